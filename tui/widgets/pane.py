"""The base of every tab in the app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, TypeGuard

from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Select

from tui.core.session import Session
from tui.widgets.failures import ShowsWorkFailures

if TYPE_CHECKING:
    from textual.widgets import TextArea


def is_text_area(widget: Widget | None) -> TypeGuard[TextArea]:
    """True for a TextArea, without importing TextArea (and its document and theme modules)
    before the first frame, which has none."""
    if not any(cls.__name__ == "TextArea" for cls in type(widget).__mro__):
        return False
    from textual.widgets import TextArea

    return isinstance(widget, TextArea)


def is_text_field(widget: Widget | None) -> TypeGuard[Input | TextArea]:
    """True for a widget that types what it is given (an Input, an editable TextArea)."""
    return isinstance(widget, Input) or (is_text_area(widget) and not widget.read_only)


class Pane(Vertical, ShowsWorkFailures, can_focus=False):
    """One tab of the app. Subclasses set PANE_ID, PANE_TITLE and their BINDINGS; their workers
    raise on failure and show_failure shows it (tui.widgets.failures)."""

    PANE_ID: ClassVar[str] = "pane"
    """Stable id: the tab is ``tab-<PANE_ID>``; binding ids start with it."""
    PANE_TITLE: ClassVar[str] = "Pane"
    """Tab label."""
    MAIN_WIDGET: ClassVar[str | None] = None
    """Selector of the widget focus goes back to when a text field is left (escape, or enter
    in a one-line field). None: the first focusable widget that is not a form field."""

    def __init__(self, session: Session) -> None:
        super().__init__(id=f"pane-{self.PANE_ID}", classes="pane")
        self.session = session
        """Shared state: data path, provider connection, last export."""

    def failure_title(self) -> str:
        return self.PANE_TITLE

    @classmethod
    def short_title(cls) -> str:
        """Tab label when the full labels do not fit the width (``Dataset`` -> ``Data``)."""
        return cls.PANE_TITLE if len(cls.PANE_TITLE) <= 6 else cls.PANE_TITLE[:4]

    @classmethod
    def pane_bindings(cls) -> Iterator[Binding]:
        """The pane's own bindings (for help and the command palette)."""
        for binding in cls.BINDINGS:
            if isinstance(binding, Binding):
                yield binding

    def focus_default(self) -> None:
        """Focus the pane's main widget when its tab is shown."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return

    # ── text fields: typing stays in the field; escape (or enter in one line) leaves it ──

    def main_widget(self) -> Widget | None:
        """The widget focus goes back to when a text field is left (override for per-side
        targets)."""
        if self.MAIN_WIDGET is not None:
            return self.query_one(self.MAIN_WIDGET)
        return next((w for w in self.query("*") if w.focusable
                     and not isinstance(w, (Input, Select)) and not is_text_area(w)
                     and not any(isinstance(a, Select) for a in w.ancestors)), None)

    def leave_field(self) -> None:
        """Leave the text field: focus the pane's main widget (nothing focused if it has none,
        so the pane keys 1-9 work again)."""
        target = self.main_widget()
        if target is not None and target.focusable:
            target.focus()
        else:
            self.screen.set_focus(None)

    def escape_is_mine(self) -> bool:
        """True while the pane's own escape action (stop what runs) comes before leaving a text
        field; the footer then shows that action on escape."""
        return False

    @on(Input.Submitted)
    def _field_committed(self, event: Input.Submitted) -> None:
        """Enter commits a one-line field and hands focus back to the pane's main widget.

        Runs after the subclass's own handler (which may call ``event.prevent_default()`` to keep
        the focus); a focus the subclass moved elsewhere (a dialog, the next field) is kept."""
        field = event.input

        def hand_back() -> None:
            if field.is_mounted and self.app.focused is field:
                self.leave_field()

        self.app.call_later(hand_back)

    def after_first_frame(self) -> None:
        """The app's first frame is on screen: start slow work here (override)."""

    def provider_changed(self) -> None:
        """The provider connection changed (override to reload provider data)."""

    def session_changed(self, fact: Message) -> None:
        """Another pane posted a cross-pane fact (tui.messages); override to react."""
