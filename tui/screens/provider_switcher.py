"""Pick a provider profile from config.toml (or the embedded local server); keys stay masked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

LOCAL = "local"
"""The embedded server's profile name (offered even when config.toml has none)."""


@dataclass(frozen=True)
class ProfileLine:
    """One profile as the switcher shows it."""

    name: str
    """Profile name."""
    kind: str
    """openai, azure, compatible or local."""
    where: str
    """Base URL or endpoint (or 'embedded server')."""
    key: str
    """Where the key comes from, with the key masked when it is readable without a prompt."""
    default: bool = False
    """config.toml's default profile."""


def profile_lines() -> list[ProfileLine]:
    """Profiles of config.toml plus the local server (reads only the file and the environment)."""
    from tui.core.provider.config import load_config, mask_key

    config = load_config()
    lines = []
    for name, profile in sorted(config.profiles.items()):
        if profile.api_key_env:
            value = os.environ.get(profile.api_key_env)
            key = f"${profile.api_key_env} " + (mask_key(value) if value else "(not set)")
        elif profile.keyring is not None:
            key = f"keyring {profile.keyring.service}/{profile.keyring.user}"
        elif profile.api_key:
            key = f"config file {mask_key(profile.api_key)}"
        else:
            key = "no key"
        where = profile.base_url or profile.endpoint or ("embedded server"
                                                         if profile.kind == "local" else "default")
        lines.append(ProfileLine(name, profile.kind, where, key, name == config.default))
    if LOCAL not in config.profiles:
        lines.append(ProfileLine(LOCAL, "local", "embedded server", "generated key"))
    return lines


class ProviderSwitcher(ModalScreen[str | None]):
    """A list of profiles; enter switches to one, escape keeps the current provider."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "dismiss_none", "Back", id="provider.back", tooltip="Keep the provider"),
    ]

    @dataclass
    class Read(Message):
        """The profiles were read."""

        lines: list[ProfileLine]
        """What to offer."""

    @dataclass
    class Unreadable(Message):
        """config.toml could not be read."""

        error: str
        """Why (never holds a key)."""

    def __init__(self, current: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current
        """The profile in use."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Switch provider (enter picks, esc keeps)", classes="dialog-question")
            yield OptionList(id="provider-options")
            yield Label("Profiles live in config.toml; keys come from the environment or the "
                        "OS keyring and are shown masked.", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.read_profiles()

    @work(thread=True, exit_on_error=False)
    def read_profiles(self) -> None:
        """Read config.toml off the event loop."""
        try:
            self.post_message(self.Read(profile_lines()))
        except Exception as error:
            self.post_message(self.Unreadable(str(error)))

    def on_provider_switcher_read(self, message: Read) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        for line in message.lines:
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append("● " if line.name == self.current else "  ", style="green")
            text.append(line.name, style="bold")
            text.append(f" ({line.kind}{', default' if line.default else ''})", style="dim")
            text.append(f"  {line.where}  {line.key}")
            options.add_option(Option(text, id=line.name))
        options.highlighted = 0

    def on_provider_switcher_unreadable(self, message: Unreadable) -> None:
        self.query_one(OptionList).add_option(Option(Text(message.error, style="red"),
                                                     disabled=True))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        """Keep the current provider."""
        self.dismiss(None)
