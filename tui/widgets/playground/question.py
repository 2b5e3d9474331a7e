"""The question field: up and down walk through earlier questions, as a shell's history does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.binding import Binding
from textual.widgets import Input


class QuestionInput(Input):
    """One line for the question; ↑ recalls an earlier one, ↓ a later one, then the draft."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("up", "walk(1)", "Earlier question", show=False, id="playground.earlier",
                tooltip="Put the previous question back in the field"),
        Binding("down", "walk(-1)", "Later question", show=False, id="playground.later",
                tooltip="Put the next question back in the field (last: what you typed)"),
    ]

    def __init__(self, earlier: Callable[[], list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._earlier = earlier
        self._position = -1
        self._draft = ""

    def action_walk(self, step: int) -> None:
        """Step through the earlier questions (newest first, each once)."""
        questions = list(dict.fromkeys(self._earlier()))
        if not questions:
            return
        if self._position == -1:
            self._draft = self.value
        self._position = max(-1, min(len(questions) - 1, self._position + step))
        self.value = self._draft if self._position == -1 else questions[self._position]
        self.cursor_position = len(self.value)

    def restart_walk(self) -> None:
        """The next ↑ starts again from the newest question."""
        self._position = -1
