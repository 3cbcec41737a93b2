"""`at config get|set|unset|show`: the four configuration layers.

What `get` and `show` print is masked as `config.masked` says (env values, secret-named
values, secrets in arguments, token shapes): configuration is often read with someone
looking, or pasted into an issue. `--reveal` prints the values as they are.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.config import (
    LAYERS,
    MISSING,
    LayeredConfig,
    load_config,
    masked,
    set_value,
    unset_value,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.output import dump_json, table
from tundra_tui.town import Town


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at config get|set|unset|show`."""
    config = commands.add_parser(
        "config",
        help="read and change layered configuration",
        description="read and change layered configuration",
    )
    common(config)
    sub = config.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)

    def command(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text
        )
        common(parser)
        parser.set_defaults(handler=handler)
        return parser

    def reveal(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--reveal", action="store_true", help="print secret values instead of masking them"
        )

    def json_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("get", "print a key's winning value", cmd_config_get)
    p.add_argument("key")
    json_flag(p)
    reveal(p)
    p = command("set", "set a key in one layer, keeping the file's comments", cmd_config_set)
    p.add_argument("key")
    p.add_argument("value", help='a TOML value (20, true, "x", ["a"]) or a bare string')
    p.add_argument("--layer", choices=["global", "project", "local"], default="project")
    p = command("unset", "remove a key from one layer", cmd_config_unset)
    p.add_argument("key")
    p.add_argument("--layer", choices=["global", "project", "local"], default="project")
    p = command("show", "print every key's value", cmd_config_show)
    p.add_argument(
        "--layers", action="store_true", help="show each layer's value and which one wins"
    )
    json_flag(p)
    reveal(p)


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


def _shown(ctx: Context) -> Callable[[str, Any], Any]:
    """How values are printed: masked, or as they are with --reveal."""
    if getattr(ctx.args, "reveal", False):
        return lambda key, value: value
    return lambda key, value: value if value is MISSING else masked(key, value)


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
    key = ctx.args.key
    value = _shown(ctx)(key, config.get(key))
    if ctx.json:
        dump_json({"key": key, "value": value, "layer": config.winner(key)})
    elif isinstance(value, dict):
        dump_json(value)
    else:
        print(_show(value).strip('"') if isinstance(value, str) else _show(value))
    return 0


async def cmd_config_set(ctx: Context) -> int:
    """Set a key in one layer; the file keeps its comments and order."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not change the configuration (the operator does)")
    path = set_value(_town_or_none(ctx), ctx.args.key, ctx.args.value, ctx.args.layer)
    print(f"set {ctx.args.key} in {ctx.args.layer} layer ({path})")
    return 0


async def cmd_config_unset(ctx: Context) -> int:
    """Remove a key from one layer, so a lower layer's value shows through."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not change the configuration (the operator does)")
    path = unset_value(_town_or_none(ctx), ctx.args.key, ctx.args.layer)
    print(f"removed {ctx.args.key} from {ctx.args.layer} layer ({path})")
    return 0


async def cmd_config_show(ctx: Context) -> int:
    """Every key's winning value; with --layers, each layer's value too."""
    config = _load(ctx)
    keys = config.leaf_keys()
    shown = _shown(ctx)

    def layer_value(key: str, layer: str) -> Any:
        return shown(key, config.value_in(key, layer))

    if ctx.json:
        dump_json(
            {
                "files": {
                    layer: str(path) if path else None for layer, path in config.paths.items()
                },
                "keys": {
                    key: {
                        "value": shown(key, config.get(key)),
                        "winner": config.winner(key),
                        "layers": {
                            layer: layer_value(key, layer)
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
                        ("* " if layer == winner else "  ") + _show(layer_value(key, layer))
                        if config.value_in(key, layer) is not MISSING
                        else ""
                        for layer in LAYERS
                    ),
                    winner,
                )
            )
        table(("KEY", *(layer.upper() for layer in LAYERS), "WINS"), rows)
    else:
        table(
            ("KEY", "VALUE", "FROM"),
            [(k, _show(shown(k, config.get(k))), config.winner(k)) for k in keys],
        )
    return 0
