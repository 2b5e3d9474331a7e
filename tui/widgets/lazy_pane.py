"""A pane named by its module, so that its tab is drawn before its code is imported."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.binding import Binding

    from tui.core.session import Session
    from tui.widgets.pane import Pane


class PaneKind(Protocol):
    """A pane class, or a LazyPane standing for one: what the app, help and palette use."""

    @property
    def PANE_ID(self) -> str:
        """Stable id (``tab-<PANE_ID>``)."""
        ...

    @property
    def PANE_TITLE(self) -> str:
        """Tab label."""
        ...

    def short_title(self) -> str:
        """Tab label when the full labels do not fit."""
        ...

    def pane_bindings(self) -> Iterator[Binding]:
        """The pane's own bindings (help, command palette)."""
        ...

    def __call__(self, session: Session) -> Pane:
        """A new pane widget."""
        ...


class LazyPane:
    """A pane class by ``"module:Class"``, imported on first use; its id and title (all the tab
    strip needs) are given here and checked against the class when it is imported."""

    def __init__(self, target: str, pane_id: str, title: str) -> None:
        self.target = target
        """``"tui.widgets.token_meter:TokenMeter"``."""
        self.PANE_ID = pane_id
        """The class's PANE_ID."""
        self.PANE_TITLE = title
        """The class's PANE_TITLE."""
        self.__name__ = target.rpartition(":")[2]
        self._class: type[Pane] | None = None

    def load(self) -> type[Pane]:
        """The pane class (its module imported on the first call)."""
        if self._class is None:
            module, _, name = self.target.partition(":")
            found: type[Pane] = getattr(importlib.import_module(module), name)
            if (found.PANE_ID, found.PANE_TITLE) != (self.PANE_ID, self.PANE_TITLE):
                raise TypeError(f"{self.target} is the pane {found.PANE_ID!r} titled "
                                f"{found.PANE_TITLE!r}, not {self.PANE_ID!r} titled "
                                f"{self.PANE_TITLE!r} as its LazyPane says")
            self._class = found
        return self._class

    def short_title(self) -> str:
        """The class's short title."""
        return self.load().short_title()

    def pane_bindings(self) -> Iterator[Binding]:
        """The class's own bindings."""
        return self.load().pane_bindings()

    def __call__(self, session: Session) -> Pane:
        """A new pane of the class."""
        return self.load()(session)

    def __repr__(self) -> str:
        return f"LazyPane({self.target!r})"


def pane_class(pane: PaneKind) -> type[Pane]:
    """The class a pane class or a LazyPane stands for (imported if need be)."""
    return pane.load() if isinstance(pane, LazyPane) else cast("type[Pane]", pane)
