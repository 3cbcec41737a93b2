"""Set or unset one configuration key in one chosen layer file.

The write is asked of the daemon here, not in the pane, so that a refused value
(ConfigError's one line) is shown in place with the user's text still in the input, and
nothing is written. The daemon keeps the file's comments (tomlkit) and tells every client
the configuration changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tundra_tui.config_schema import ConfigError, leaf_for, split_key
from tundra_tui.daemon.protocol import ConfigSet, ConfigUnset, ConfigWritten, Request
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.link import Link


@dataclass(frozen=True)
class ConfigWrite:
    """What the modal wrote: the key, the layer and its file."""

    key: str
    layer: str
    path: Path
    unset: bool


def describe_key(key: str) -> str:
    """What a valid value of `key` looks like, or "" for a key the schema does not know."""
    try:
        leaf = leaf_for(split_key(key))
    except ConfigError:
        return ""
    return leaf.describe() if leaf else ""


class ConfigEditModal(ModalScreen[ConfigWrite | None]):
    """Choose a layer (↑/↓ in the list) and a value; ctrl+s or Enter writes it.

    With `unset`, there is no value: the key is removed from the chosen layer after
    the operator confirms with `y` or ctrl+s. With an empty `key`, the operator types
    the key too (setting a key no layer sets yet). Dismisses with the write done, or
    None when cancelled.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "apply", "Write", id="config-edit-save"),
        Binding("y", "confirm", "Confirm unset", id="config-edit-confirm"),
        Binding("escape", "cancel", "Cancel", id="config-edit-cancel"),
        Binding("up", "layer(-1)", "Layer above", id="config-edit-layer-up", show=False),
        Binding("down", "layer(1)", "Layer below", id="config-edit-layer-down", show=False),
    ]

    def __init__(
        self,
        link: Link,
        *,
        key: str,
        layers: dict[str, str],
        layer: str,
        value: str = "",
        unset: bool = False,
        secret: bool = False,
    ) -> None:
        """`layers` maps each layer offered to its file as shown; `layer` is chosen first."""
        # An id, so its styles outrank the app-wide `Screen` rule loaded after them.
        super().__init__(id="config-edit")
        self.link = link
        """The daemon, which writes the file."""
        self.key = key
        self.choices = layers
        self.chosen = layer if layer in layers else next(iter(layers))
        """The layer the write goes to: the highlighted one in the list."""
        self.value = value
        self.unset = unset
        self.secret = secret
        """The value is a table of env values: never prefilled, so never shown."""
        self._writing = False

    def compose(self) -> ComposeResult:
        verb = "Unset" if self.unset else "Set"
        with Vertical(id="config-edit-box"):
            title = f"{verb} {visible(self.key, single_line=True)}" if self.key else "Set a key"
            yield Static(Text(title), id="config-edit-title")
            if not self.key:
                yield Input(placeholder="key, e.g. runtimes.claude.args", id="config-edit-key")
            hint = Static(Text(self._hint(self.key)), id="config-edit-hint")
            hint.display = bool(self._hint(self.key))
            yield hint
            yield Static(Text("from layer" if self.unset else "in layer"), classes="-label")
            options = [Option(self._prompt(name), id=name) for name in self.choices]
            yield OptionList(*options, id="config-edit-layers")
            if not self.unset:
                yield Static(Text('value (TOML: 8, true, ["a"], or plain text)'), classes="-label")
                yield Input(
                    value=self.value,
                    placeholder='{NAME = "value"}: the whole table' if self.secret else "",
                    id="config-edit-value",
                )
            yield Static("", id="config-edit-error")
            keys = "y or ctrl+s unset" if self.unset else "Enter or ctrl+s write"
            yield Static(Text(f"{keys} · ↑/↓ layer · tab next · esc cancel"), id="config-edit-keys")

    def on_mount(self) -> None:
        layers = self.query_one("#config-edit-layers", OptionList)
        layers.highlighted = list(self.choices).index(self.chosen)
        if not self.key:
            self.query_one("#config-edit-key", Input).focus()
        elif self.unset:
            layers.focus()
        else:
            self.query_one("#config-edit-value", Input).focus()

    def _prompt(self, layer: str) -> Content:
        """A layer and its file; the chosen one marked by a shape, not only the highlight."""
        mark = "● " if layer == self.chosen else "  "
        return Content(f"{mark}{layer:<8} {visible(self.choices[layer], single_line=True)}")

    def _hint(self, key: str) -> str:
        if self.unset:
            return ""
        expected = describe_key(key) if key else ""
        hint = f"expects {expected}" if expected else ""
        if self.secret:
            hint += " · values are hidden: enter the whole table"
        return hint.strip(" ·")

    @on(OptionList.OptionHighlighted, "#config-edit-layers")
    def _layer_chosen(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.chosen = event.option.id
            for layer in self.choices:
                event.option_list.replace_option_prompt(layer, self._prompt(layer))

    @on(Input.Changed, "#config-edit-key")
    def _key_typed(self, event: Input.Changed) -> None:
        hint = self._hint(event.value.strip())
        widget = self.query_one("#config-edit-hint", Static)
        widget.update(Text(hint))
        widget.display = bool(hint)

    @on(Input.Submitted)
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "config-edit-key" and not self.unset:
            self.query_one("#config-edit-value", Input).focus()
            return
        await self.action_apply()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return self.unset
        return True

    async def action_confirm(self) -> None:
        """`y`: the unset is confirmed."""
        await self.action_apply()

    async def action_apply(self) -> None:
        """Write the value (or remove the key); show a refusal here and write nothing."""
        key = self.key or self.query_one("#config-edit-key", Input).value.strip()
        if not key:
            self._refuse("type a key first")
            return
        if self._writing:
            return
        self._writing = True
        request: Request
        if self.unset:
            request = ConfigUnset(key=key, layer=self.chosen)
        else:
            raw = self.query_one("#config-edit-value", Input).value
            request = ConfigSet(key=key, value=raw, layer=self.chosen)
        try:
            written = await self.link.call(request)
        except TundraError as error:
            self._refuse(str(error))
            return
        finally:
            self._writing = False
        path = Path(written.path) if isinstance(written, ConfigWritten) else Path()
        self.dismiss(ConfigWrite(key=key, layer=self.chosen, path=path, unset=self.unset))

    def _refuse(self, reason: str) -> None:
        self.query_one("#config-edit-error", Static).update(Text(visible(reason, single_line=True)))

    def action_layer(self, step: int) -> None:
        """Choose the layer above or below from any field (the list has ↑/↓ of its own)."""
        layers = self.query_one("#config-edit-layers", OptionList)
        index = list(self.choices).index(self.chosen) + step
        layers.highlighted = max(0, min(index, len(self.choices) - 1))

    def action_cancel(self) -> None:
        self.dismiss(None)
