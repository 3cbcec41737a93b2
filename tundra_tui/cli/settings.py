"""`at config get|set|unset|show`: the four configuration layers."""

from __future__ import annotations

from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.config import LAYERS, MISSING, LayeredConfig, load_config, set_value, unset_value
from tundra_tui.domain.errors import TundraError
from tundra_tui.output import dump_json, table
from tundra_tui.town import Town


def _town_or_none(ctx: Context) -> Town | None:
    """Global settings work outside a town; project and local ones need one."""
    try:
        return ctx.town()
    except TundraError:
        if getattr(ctx.args, "layer", "global") != "global":
            raise
        return None


def _load(ctx: Context) -> LayeredConfig:
    """The town's layered config, or just defaults and global outside a town."""
    if _town_or_none(ctx) is not None:
        return ctx.config()
    return load_config(None)


def _show(value: Any) -> str:
    if value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


async def cmd_config_get(ctx: Context) -> int:
    """Print a key's winning value and the layer it comes from."""
    config = _load(ctx)
    value = config.get(ctx.args.key)
    if ctx.json:
        dump_json({"key": ctx.args.key, "value": value, "layer": config.winner(ctx.args.key)})
    elif isinstance(value, dict):
        dump_json(value)
    else:
        print(_show(value).strip('"') if isinstance(value, str) else _show(value))
    return 0


async def cmd_config_set(ctx: Context) -> int:
    """Set a key in one layer; the file keeps its comments and order."""
    path = set_value(_town_or_none(ctx), ctx.args.key, ctx.args.value, ctx.args.layer)
    print(f"set {ctx.args.key} in {ctx.args.layer} layer ({path})")
    return 0


async def cmd_config_unset(ctx: Context) -> int:
    """Remove a key from one layer, so a lower layer's value shows through."""
    path = unset_value(_town_or_none(ctx), ctx.args.key, ctx.args.layer)
    print(f"removed {ctx.args.key} from {ctx.args.layer} layer ({path})")
    return 0


async def cmd_config_show(ctx: Context) -> int:
    """Every key's winning value; with --layers, each layer's value too."""
    config = _load(ctx)
    keys = config.leaf_keys()
    if ctx.json:
        dump_json(
            {
                "files": {
                    layer: str(path) if path else None for layer, path in config.paths.items()
                },
                "keys": {
                    key: {
                        "value": config.get(key),
                        "winner": config.winner(key),
                        "layers": {
                            layer: config.value_in(key, layer)
                            for layer in LAYERS
                            if config.value_in(key, layer) is not MISSING
                        },
                    }
                    for key in keys
                },
            }
        )
        return 0
    if ctx.args.layers:
        for layer in LAYERS[1:]:
            path = config.paths.get(layer)
            state = "" if path is None else ("" if path.exists() else " (not created)")
            print(f"{layer:<8} {path or '-'}{state}")
        print()
        rows = []
        for key in keys:
            winner = config.winner(key)
            rows.append(
                (
                    key,
                    *(
                        ("* " if layer == winner else "  ") + _show(config.value_in(key, layer))
                        if config.value_in(key, layer) is not MISSING
                        else ""
                        for layer in LAYERS
                    ),
                    winner,
                )
            )
        table(("KEY", *(layer.upper() for layer in LAYERS), "WINS"), rows)
    else:
        table(("KEY", "VALUE", "FROM"), [(k, _show(config.get(k)), config.winner(k)) for k in keys])
    return 0
