"""Playground dialogs: a filterable list (databases, questions, history) and a model picker."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tui.core.elide import elide_middle
from tui.core.inference.playground import ModelChoice, Workspace, classify_model

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
"""An environment variable name as the key field accepts it (a pasted key is refused)."""
MAX_SHOWN = 200
"""Choices listed at once (Spider has thousands of questions: the filter narrows them)."""
KIND_STYLE = {"fine-tuned": "bold green", "checkpoint": "green", "base": "", "endpoint": "cyan"}
"""How each kind of model is drawn in the list."""


def database_items(workspace: Workspace) -> list[Text]:
    """Each database with how many questions of the split ask about it."""
    counts: dict[str, int] = {}
    for example in workspace.questions:
        counts[example.db_id] = counts.get(example.db_id, 0) + 1
    return [Text.assemble(db.db_id, (f"  {counts[db.db_id]} {workspace.split} questions"
                                     if db.db_id in counts else "", "dim"))
            for db in workspace.databases]


class ChoicePicker(ModalScreen[int | None]):
    """Type to filter, up/down to move, enter to pick; dismisses with the item's index."""

    DEFAULT_CSS = """
    ChoicePicker .dialog { height: 90%; }
    ChoicePicker OptionList { height: 1fr; }
    ChoicePicker #choice-filter { margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "dismiss_none", "Back", id="choice.back", tooltip="Close"),
        Binding("down", "move(1)", "Down", show=False, id="choice.down"),
        Binding("up", "move(-1)", "Up", show=False, id="choice.up"),
        Binding("pagedown", "move(10)", "Page down", show=False, id="choice.page_down"),
        Binding("pageup", "move(-10)", "Page up", show=False, id="choice.page_up"),
    ]

    def __init__(self, title: str, items: Sequence[Text | str], *, hint: str = "",
                 selected: int | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        """What is being picked."""
        self.items = [item if isinstance(item, Text) else Text(item) for item in items]
        """Every choice, as drawn."""
        self._plain = [item.plain.lower() for item in self.items]
        self.hint = hint
        """A line of help under the list."""
        self.selected = selected
        """The index highlighted at first (the current choice)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-question")
            yield Input(placeholder="type to filter…", id="choice-filter", compact=True)
            yield OptionList(id="choice-options")
            if self.hint:
                yield Label(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill("")
        options = self.query_one(OptionList)
        if self.selected is not None:
            index = next((i for i, option in enumerate(options.options)
                          if option.id == str(self.selected)), None)
            if index is not None:
                options.highlighted = index
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        matches = [index for index, plain in enumerate(self._plain)
                   if all(word in plain for word in words)]
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(Option(self.items[index], id=str(index))
                            for index in matches[:MAX_SHOWN])
        if len(matches) > MAX_SHOWN:
            options.add_option(Option(Text(f"… {len(matches) - MAX_SHOWN:,} more: type to "
                                           "narrow", style="dim italic"), disabled=True))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Changed, "#choice-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#choice-filter")
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            option = options.get_option_at_index(options.highlighted)
            if option.id is not None:
                self.dismiss(int(option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_move(self, step: int) -> None:
        """Move the highlight while the filter keeps the focus."""
        options = self.query_one(OptionList)
        if not options.option_count:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(options.option_count - 1, current + step))

    def action_dismiss_none(self) -> None:
        """Close without picking."""
        self.dismiss(None)


def model_line(choice: ModelChoice, current: ModelChoice | None = None,
               width: int = 200) -> Text:
    """One model as the picker lists it: a mark for the current one, its kind and its name,
    cut in the middle to ``width`` cells (a tuned model's job id and step stay)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● " if choice == current else "  ", style="green")
    text.append(f"{choice.kind:<11}", style="dim")
    text.append(elide_middle(choice.label, max(8, width - 13)),
                style=KIND_STYLE.get(choice.kind, ""))
    return text


DIALOG_WIDTH = 70
"""The dialogs' width in app.tcss (at most the terminal's)."""


class ModelPicker(ModalScreen[ModelChoice | None]):
    """The provider's models, or a model typed by name, maybe on another endpoint."""

    DEFAULT_CSS = """
    ModelPicker OptionList { height: auto; max-height: 10; }
    ModelPicker .row { height: 1; }
    ModelPicker .row Label { width: 11; color: $text-muted; }
    ModelPicker .row Input { width: 1fr; }
    ModelPicker #model-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "dismiss_none", "Back", id="model.back", tooltip="Keep the model"),
    ]

    def __init__(self, title: str, models: Sequence[ModelChoice],
                 current: ModelChoice | None, *, loading: bool = False,
                 error: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        """Which side the model is for."""
        self.models = list(models)
        """The provider's models, fine-tuned first."""
        self.current = current
        """The side's model now."""
        self.loading = loading
        """True while the model list is still being read."""
        self.error = error
        """Why the provider's models could not be listed."""

    def compose(self) -> ComposeResult:
        typed = self.current if self.current not in self.models else None
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-question")
            # dialog border and padding, the list's border, padding and scrollbar: 12 cells
            room = min(DIALOG_WIDTH, self.app.size.width) - 12
            yield OptionList(*(Option(model_line(m, self.current, room), id=str(i))
                               for i, m in enumerate(self.models)), id="model-options")
            if self.error:
                yield Label(Text(f"cannot list the provider's models: {self.error}",
                                 style="red"), classes="dialog-hint")
            elif not self.models:
                yield Label("reading the provider's models…" if self.loading
                            else "the provider lists no models: type one below",
                            classes="dialog-hint")
            yield Label("or type a model (enter picks it; tab moves between fields):",
                        classes="dialog-hint")
            with Horizontal(classes="row"):
                yield Label("model")
                yield Input(typed.name if typed else "", id="model-name", compact=True,
                            placeholder="e.g. gpt-4o-mini, llama3.1")
            with Horizontal(classes="row"):
                yield Label("base URL")
                yield Input(typed.base_url or "" if typed else "", id="model-url", compact=True,
                            placeholder="another endpoint, e.g. http://127.0.0.1:8000/v1")
            with Horizontal(classes="row"):
                yield Label("key from $")
                yield Input(typed.key_env or "" if typed else "", id="model-key", compact=True,
                            placeholder="environment variable (empty: no key)")
            yield Label("", id="model-error")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.models:
            index = next((i for i, m in enumerate(self.models) if m == self.current), 0)
            options.highlighted = index
            options.focus()
        else:
            self.query_one("#model-name", Input).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.models[int(event.option.id or 0)])

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        name = self.query_one("#model-name", Input).value.strip()
        url = self.query_one("#model-url", Input).value.strip().rstrip("/")
        key_env = self.query_one("#model-key", Input).value.strip().lstrip("$")
        error = self.query_one("#model-error", Label)
        if not name:
            error.update("type a model name first")
            self.query_one("#model-name", Input).focus()
            return
        if url and not url.startswith(("http://", "https://")):
            error.update("the base URL must start with http:// or https://")
            self.query_one("#model-url", Input).focus()
            return
        if key_env and not ENV_NAME.fullmatch(key_env):
            error.update("name the environment variable that holds the key (A-Z, 0-9, _), "
                         "never the key itself")
            self.query_one("#model-key", Input).focus()
            return
        if url:
            self.dismiss(ModelChoice(name, "endpoint", base_url=url, key_env=key_env or None))
        else:
            self.dismiss(ModelChoice(name, classify_model(name)))

    def action_dismiss_none(self) -> None:
        """Keep the current model."""
        self.dismiss(None)
