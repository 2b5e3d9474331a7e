"""Command-palette entries for every pane and every pane action, built from their BINDINGS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.widgets.pane import Pane


class PaneHost(Protocol):
    """What the palette needs from the app."""

    def pane_classes(self) -> list[type[Pane]]:
        """The panes in tab order."""
        ...

    def action_show_pane(self, index: int) -> None:
        """Show the pane at ``index``."""
        ...

    def run_pane_action(self, pane_id: str, action: str) -> Any:
        """Show the pane, then run one of its actions."""
        ...


class PaneCommands(Provider):
    """``Dataset: next page``, ``Go to Jobs``… one entry per pane action."""

    def _entries(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        host: PaneHost = self.app  # type: ignore[assignment]
        for index, pane in enumerate(host.pane_classes()):
            yield (f"Go to {pane.PANE_TITLE}", f"Show the {pane.PANE_TITLE} pane (key {index + 1})",
                   partial(host.action_show_pane, index))
            for binding in pane.pane_bindings():
                if binding.system:
                    continue
                yield (f"{pane.PANE_TITLE}: {binding.description}",
                       binding.tooltip or binding.description,
                       partial(host.run_pane_action, pane.PANE_ID, binding.action))

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
