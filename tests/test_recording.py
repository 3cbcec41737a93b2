"""The flight recorder: `at detect --record` through a real daemon, `--replay`, fixtures, the
CLI version probe."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import time
from pathlib import Path

import pytest
from at_cli import agent_state, at, daemon_town, wait_for

from tundra_tui.daemon import recorder
from tundra_tui.daemon.recorder import cli_version
from tundra_tui.domain.agents import Runtime
from tundra_tui.session.detect import Detected, Detection
from tundra_tui.session.recording import (
    Recording,
    read_recording,
    recording_from_dict,
    replay_files,
    replay_one,
)


def test_record_replay_and_fixture_of_a_live_demo_agent(tmp_path: Path) -> None:
    with daemon_town() as town:
        at(town, "agent", "start", "d1")
        wait_for(lambda: agent_state(town, "d1") == "idle")
        reply = json.loads(at(town, "detect", "--record", "d1", "--label", "idle", "--json").stdout)
        path = Path(reply["path"])
        assert reply["state"] == "idle" and reply["label"] == "idle" and reply["rule"]
        # An agent's screen and the detector's verdict, in a private file of a private dir.
        assert path.parent == town / ".tundra" / "recordings"
        assert path.name.startswith("d1-") and path.name.endswith("-idle.json")
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        recording = read_recording(path)
        assert recording.runtime == "demo" and recording.agent == "d1"
        assert recording.version.startswith("demo agent ")
        assert any("demo❯" in line for line in recording.lines)
        assert recording.verdict.evidence is not None
        assert recording.verdict.evidence.rule == reply["rule"]
        assert recording.verdict.evidence.source == "screen"

        # As recorded, the detector agrees with the label.
        passed = at(town, "detect", "--replay", str(path.parent))
        assert ", ok (" in passed.stdout and "1 files: 1 ok" in passed.stdout

        # A copy labelled wrong is a DIFF and fails the run; a bad file is one error line.
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        data = json.loads(path.read_text())
        data["label"] = "working"
        (wrong / "edited.json").write_text(json.dumps(data))
        (wrong / "broken.json").write_text("{not json")
        failed = at(town, "detect", "--replay", str(wrong), check=False)
        assert failed.returncode == 1, failed.stderr
        lines = failed.stdout.splitlines()
        assert any("edited.json: label working, detected idle, DIFF" in line for line in lines)
        assert any("broken.json: error: malformed JSON" in line for line in lines)
        assert lines[-1] == "2 files: 0 ok, 1 differ, 1 errors"

        # One step from recording to a fixture the corpus test and --replay both read.
        fixtures = tmp_path / "screens"
        written = at(town, "detect", "--to-fixture", str(path), "--fixtures", str(fixtures))
        fixture = Path(written.stdout.strip())
        assert fixture == fixtures / "demo" / "idle-recorded-1.txt"
        result = json.loads(at(town, "detect", "--replay", str(fixtures), "--json").stdout)
        assert [f["ok"] for f in result["files"]] == [True] and result["differ"] == 0


def test_cli_version_asks_known_clis_only(tmp_path: Path) -> None:
    for name in ("claude", "mycli"):
        script = tmp_path / name
        script.write_text("#!/bin/sh\necho '2.1.330 (Claude Code)'\n")
        script.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", "")}

    def version(runtime: Runtime, command: str) -> str:
        return asyncio.run(cli_version(runtime, [str(tmp_path / command)], env, tmp_path))

    assert version(Runtime.CLAUDE, "claude") == "2.1.330 (Claude Code)"
    # A wrapper or a custom command might not know --version and start a session instead.
    assert version(Runtime.CLAUDE, "mycli") == "unknown"
    assert version(Runtime.CUSTOM, "mycli") == "unknown"


def fake_cli(path: Path, version: str, *, slow_first: float = 0.0) -> Path:
    """A `--version` answering script that counts its runs in `<path>.runs` (the first run
    sleeps `slow_first` seconds, as a fresh install unpacking itself does)."""
    runs = path.with_suffix(".runs")
    path.write_text(
        "#!/bin/sh\n"
        f"echo run >> {runs}\n"
        f'if [ "$(wc -l < {runs})" -eq 1 ]; then sleep {slow_first}; fi\n'
        f"echo '{version}'\n"
    )
    path.chmod(0o755)
    return runs


def test_a_version_is_asked_once_per_installed_binary(tmp_path: Path) -> None:
    """Every agent start asks (for its channel): one `--version` per binary, until it is
    replaced (an upgrade)."""
    opencode = tmp_path / "bin" / "opencode"
    opencode.parent.mkdir()
    runs = fake_cli(opencode, "1.18.33")
    env = {"PATH": f"{opencode.parent}:/usr/bin:/bin"}

    async def twice() -> list[str]:
        return [await cli_version(Runtime.OPENCODE, ["opencode"], env, tmp_path) for _ in "ab"]

    assert asyncio.run(twice()) == ["1.18.33", "1.18.33"]
    assert len(runs.read_text().splitlines()) == 1
    runs.unlink()
    fake_cli(opencode, "1.19.0 (an upgrade)")
    os.utime(opencode, ns=(1, 1))  # whatever the clock's resolution, the binary changed
    assert asyncio.run(twice()) == ["1.19.0 (an upgrade)"] * 2
    assert len(runs.read_text().splitlines()) == 1


def test_a_slow_first_version_is_unknown_now_and_known_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh OpenCode took longer than the start waits: that start goes without the
    channel, the answer still comes, and the next start has it without asking again."""
    monkeypatch.setattr(recorder, "VERSION_TIMEOUT", 0.2)
    opencode = tmp_path / "opencode"
    runs = fake_cli(opencode, "1.18.33", slow_first=1.0)
    env = {"PATH": "/usr/bin:/bin"}

    async def starts() -> tuple[str, str]:
        first = await cli_version(Runtime.OPENCODE, [str(opencode)], env, tmp_path)
        deadline = time.monotonic() + 10
        later = first
        while later == "unknown" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            later = await cli_version(Runtime.OPENCODE, [str(opencode)], env, tmp_path)
        return first, later

    assert asyncio.run(starts()) == ("unknown", "1.18.33")
    assert len(runs.read_text().splitlines()) == 1, "the slow run was awaited, not repeated"


def test_replay_reads_the_rows_the_daemon_read() -> None:
    """An old prompt high on a tall screen was out of the daemon's sight; replay keeps it
    out too (scored whole, that screen would be an approval)."""
    menu = ["Allow this command?", "  touch approved.txt", "❯ 1. Yes", "  2. No"]
    # Output, not a prompt: an idle prompt under the menu would mean it was answered.
    out = ["touched approved.txt", "exit status 0"]
    lines = [*menu, *[""] * 20, *out, "", ""]
    recording = Recording(
        agent="d1",
        runtime="demo",
        version="unknown",
        lines=lines,
        cursor=(5, 25),
        verdict=Detection(Detected.IDLE, None),
        label=Detected.IDLE,
        recorded_at="2026-12-07T15:00:00+00:00",
        read_rows=20,
    )
    assert recording.rescore().state is Detected.UNKNOWN
    again = recording_from_dict(json.loads(json.dumps(recording.to_dict())))
    assert again == recording and again.read == [*[""] * 18, *out]
    whole = dataclasses.replace(again, read_rows=None)
    assert whole.rescore().state is Detected.AWAITING_APPROVAL


def test_replay_scores_every_screen_fixture_the_detector_is_tested_on() -> None:
    """`at detect --replay tests/fixtures/screens` agrees with the fixtures' labels, the
    generic ones (in no one CLI's wording) read as the custom runtime."""
    fixtures = Path(__file__).parent / "fixtures" / "screens"
    results = [replay_one(path) for path in replay_files(fixtures)]
    assert any(r.path.parent.name == "generic" for r in results)
    assert [r for r in results if r.error or not r.ok] == []
