"""OpenCode's plugin through a real daemon: state reported by the agent, approvals on the screen.

The agent is a script named `opencode` (tests/helpers/opencode_plugin_agent.py) that
draws OpenCode 1.18.33's screens and, when the launch named our plugin, plays its
reports with the payloads OpenCode sent. The plugin's `permission.asked` makes the
agent awaiting approval (with the exact command) before the screen shows the prompt;
the request itself is read off the screen and answered with keys. An OpenCode older
than the plugin's events gets no plugin: the screen decides. The plugin file itself
is run in node with recorded events (its order and dedup).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import agent_state, at, fake_cli_town, pending_approvals, wait_for

from tundra_tui.cli.detect import explain_lines
from tundra_tui.daemon.channels import with_channels
from tundra_tui.daemon.protocol import Explained
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.adapters.base import Launch
from tundra_tui.session.adapters.opencode import ADAPTER as OPENCODE
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.detect import Detected
from tundra_tui.session.hooks import (
    OPENCODE_CONFIG_ENV,
    OPENCODE_HOOK_ENV,
    OPENCODE_PLUGIN,
    channel_of,
    hook_detection,
    opencode_plugin_env,
)

HELPER = Path(__file__).parent / "helpers" / "opencode_plugin_agent.py"
PAYLOADS = Path(__file__).parent / "fixtures" / "channels"


@pytest.fixture
def opencode_town(request: pytest.FixtureRequest) -> Iterator[Path]:
    with fake_cli_town("opencode", "oc", HELPER, getattr(request, "param", "1.18.33")) as root:
        yield root


def explain(town: Path) -> dict[str, object]:
    return dict(json.loads(at(town, "detect", "--explain", "oc", "--json").stdout))


def test_the_plugin_reports_state_and_the_screen_answers(opencode_town: Path) -> None:
    town = opencode_town
    at(town, "send", "oc", "RUN: touch plugged.txt")

    # Asking, from the plugin, while the screen still shows the spinner: no request yet
    # (a request is what the screen shows, and is answered with keys).
    wait_for(lambda: agent_state(town, "oc") == "awaiting_approval")
    told = explain(town)
    assert (told["source"], told["rule"]) == ("hook", "opencode.plugin.permission_asked")
    assert told["matched"] == "permission.asked bash: touch plugged.txt"
    assert (told["versions"], told["channel"]) == (
        "opencode 1.3.2-1.18.33 plugin",
        "OpenCode plugin (state only)",
    )
    assert pending_approvals(town) == []

    (town / "draw-prompt").touch()
    wait_for(lambda: len(pending_approvals(town)) == 1)
    (request,) = pending_approvals(town)
    assert (request["source"], request["subject"]) == ("screen", "touch plugged.txt")
    at(town, "approve", str(request["id"]))
    wait_for(lambda: (town / "plugged.txt").exists() and agent_state(town, "oc") == "idle")
    assert pending_approvals(town) == []
    events = json.loads(at(town, "events", "--agent", "oc", "--json", "-n", "200").stdout)
    reported = [e["data"].get("event") for e in events if e["kind"] == "agent.hook"]
    assert reported == [
        "session.status",
        "permission.asked",
        "permission.replied",
        "session.status",
    ]


@pytest.mark.parametrize(("version", "wired"), [("1.3.1", False), ("1.3.2", True)])
def test_the_launch_wires_the_plugin_from_1_3_2(tmp_path: Path, version: str, wired: bool) -> None:
    """Older OpenCode gets no plugin: the screen decides (the matrix's screens cover it)."""
    program = tmp_path / "opencode"  # the name the version check asks `--version` of
    program.write_text(f'#!/bin/sh\nexec {sys.executable} {HELPER} {version} "$@"\n')
    program.chmod(0o755)
    launch = Launch([str(program)], {"PATH": "/usr/bin:/bin"}, tmp_path)
    config = asyncio.run(with_channels(AgentConfig("oc", OPENCODE, launch)))
    assert (OPENCODE_HOOK_ENV in config.launch.env) is wired
    channel = channel_of(Runtime.OPENCODE, config.launch.argv, config.launch.env)
    assert channel == ("OpenCode plugin (state only)" if wired else "none (the screen only)")


def test_explain_names_the_plugin() -> None:
    told = Explained(
        state="awaiting_approval",
        source="hook",
        rule="opencode.plugin.permission_asked",
        matched="permission.asked bash: touch x",
        versions="opencode 1.3.2-1.18.33 plugin",
        since=0.0,
        channel="OpenCode plugin (state only)",
    )
    assert explain_lines("oc", told)[1:] == [
        "  decided by its OpenCode plugin: opencode.plugin.permission_asked "
        "(opencode 1.3.2-1.18.33 plugin)",
        "  matched: permission.asked bash: touch x",
        "  structured channel: OpenCode plugin (state only)",
    ]


def recorded(version: str, name: str) -> dict[str, object]:
    return dict(json.loads((PAYLOADS / f"opencode-{version}" / f"{name}.json").read_text()))


@pytest.mark.parametrize("version", ["1.3.2", "1.18.33"])
def test_recorded_payloads_read_as_states(version: str) -> None:
    def read(name: str) -> tuple[Detected, str] | None:
        event = recorded(version, name)
        found = hook_detection(Runtime.OPENCODE, str(event["type"]), event["properties"])  # type: ignore[arg-type]
        assert found is None or found.evidence is not None
        return None if found is None else (found.state, found.evidence.matched)  # type: ignore[union-attr]

    assert read("session.status-busy") == (Detected.WORKING, "session.status busy")
    # 1.3.2 sends the command only in `patterns`; 1.18.33 in `metadata.command` too.
    assert read("permission.asked") == (
        Detected.AWAITING_APPROVAL,
        "permission.asked bash: touch approved.txt",
    )
    assert read("permission.replied") == (Detected.WORKING, "permission.replied once")
    assert read("session.status-idle") == (Detected.IDLE, "session.status idle")
    assert read("session.idle") == (Detected.IDLE, "session.idle")
    assert hook_detection(Runtime.OPENCODE, "message.updated", {}) is None


def test_the_plugin_is_added_to_the_users_own_config_content() -> None:
    ours = OPENCODE_PLUGIN.resolve().as_uri()
    added = opencode_plugin_env({}, ["at", "hook-event"])
    assert added is not None
    assert json.loads(added[OPENCODE_CONFIG_ENV]) == {"plugin": [ours]}
    assert json.loads(added[OPENCODE_HOOK_ENV]) == ["at", "hook-event"]
    theirs = json.dumps({"model": "x/y", "plugin": ["their-plugin"]})
    added = opencode_plugin_env({OPENCODE_CONFIG_ENV: theirs}, ["at"])
    assert added is not None
    assert json.loads(added[OPENCODE_CONFIG_ENV]) == {
        "model": "x/y",
        "plugin": ["their-plugin", ours],
    }
    # Config we cannot extend is left as the user wrote it, and no plugin is loaded.
    assert opencode_plugin_env({OPENCODE_CONFIG_ENV: "{'jsonc': 1,}"}, ["at"]) is None
    assert opencode_plugin_env({OPENCODE_CONFIG_ENV: '{"plugin": "one"}'}, ["at"]) is None


DRIVER = """
const plugin = await import(process.argv[1]);
const hooks = await Object.values(plugin)[0]({});
for (const event of JSON.parse(process.argv[2])) await hooks.event({ event });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs OpenCode's plugins")
def test_the_plugin_reports_changes_in_order(tmp_path: Path) -> None:
    """The plugin file itself: each report once, in order, none for a subagent's session."""
    log = tmp_path / "reports.jsonl"
    logger = "import json,sys; open(sys.argv[1],'a').write(json.dumps(sys.argv[2:])+'\\n')"
    child = {"info": {"id": "ses_child", "parentID": "ses_parent"}}
    events = [
        recorded("1.18.33", "session.status-busy"),
        recorded("1.18.33", "session.status-busy"),
        {"type": "session.created", "properties": child},
        {
            "type": "session.status",
            "properties": {"sessionID": "ses_child", "status": {"type": "idle"}},
        },
        {"type": "message.updated", "properties": {}},
        recorded("1.18.33", "permission.asked"),
        recorded("1.18.33", "permission.replied"),
        recorded("1.18.33", "session.status-busy"),
        recorded("1.18.33", "session.status-idle"),
        recorded("1.18.33", "session.idle"),
    ]
    command = [sys.executable, "-c", logger, str(log)]
    subprocess.run(
        ["node", "--input-type=module", "-e", DRIVER, OPENCODE_PLUGIN.as_uri(), json.dumps(events)],
        env={"PATH": "/usr/bin:/bin", OPENCODE_HOOK_ENV: json.dumps(command)},
        check=True,
        timeout=30,
    )
    reports = [json.loads(line) for line in log.read_text().splitlines()]
    assert [kind for kind, _ in reports] == [
        "session.status",
        "permission.asked",
        "permission.replied",
        "session.status",
    ]
    assert json.loads(reports[1][1]) == recorded("1.18.33", "permission.asked")["properties"]
