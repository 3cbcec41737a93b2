"""The demo agent driven as the session host drives it: in a real PTY, text then a separate Enter.

Every read waits on a deadline rather than a sleep, so a busy machine slows the tests down but
does not fail them.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ptyprocess
import pytest

from tundra_tui.usage.pricing import price_for

DEADLINE = 10.0
APPROVAL_BLOCK = (
    "Allow this command?\r\n  {cmd}\r\n❯ 1. Yes\r\n  2. No\r\n1/y approve · 2/n/Esc deny\r\n"
)
SESSION = "0b4d1a6e-2f0c-4c1e-9a55-3f2f6c1d7e01"


class Agent:
    """One demo agent in a PTY, with `expect` reading its output up to a string."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.output = b""
        self._seen = 0

    def _pump(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False once the PTY is closed."""
        ready, _, _ = select.select([self.process.fd], [], [], timeout)
        if ready:
            try:
                data = os.read(self.process.fd, 65536)
            except OSError:
                return False
            if not data:
                return False
            self.output += data
        return True

    def expect(self, text: str, timeout: float = DEADLINE) -> str:
        """Wait until `text` appears after the last match; return the output up to it."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while (at := self.output.find(wanted, self._seen)) < 0:
            if time.monotonic() > deadline or not self._pump(0.05):
                tail = self.output[self._seen :].decode(errors="replace")
                raise AssertionError(f"{text!r} did not appear; output since last match:\n{tail}")
        before = self.output[self._seen : at].decode(errors="replace")
        self._seen = at + len(wanted)
        return before

    def drain(self, seconds: float) -> str:
        """Read for `seconds` and return everything new since the last match."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._pump(0.05):
            pass
        return self.output[self._seen :].decode(errors="replace")

    def send(self, keys: str) -> None:
        self.process.write(keys.encode())

    def task(self, text: str) -> None:
        """Type `text`, pause, then Enter in a separate write, as real CLIs receive a prompt."""
        self.send(text)
        time.sleep(0.2)
        self.send("\r")

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        """Read to the end of output and return the exit status (128+N for signal N)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pump(0.05):
            pass
        while self.process.isalive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.process.isalive(), "the demo agent did not exit"
        self.process.wait()
        if self.process.signalstatus is not None:
            return 128 + int(self.process.signalstatus)
        return int(self.process.exitstatus)


@pytest.fixture
def spawn(tmp_path: Path, private_home: Path) -> Iterator[Any]:
    """Start demo agents in `tmp_path/work` with a private HOME; kill leftovers afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    started: list[Any] = []
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    env["HOME"] = str(private_home)

    def start(*args: str) -> Agent:
        argv = [sys.executable, "-m", "tundra_tui.demo_agent", "--seed", "7"]
        argv += ["--approval-rate", "0", *args]
        process = ptyprocess.PtyProcess.spawn(argv, cwd=str(work), env=env, dimensions=(40, 120))
        started.append(process)
        return Agent(process)

    yield start
    for process in started:
        if process.isalive():
            process.terminate(force=True)


def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_approved_command_runs_and_idle_returns(spawn: Any, tmp_path: Path) -> None:
    agent = spawn("--speed", "0.2")
    agent.expect("[demo] idle")
    agent.expect("demo❯ ")
    agent.task("RUN: touch approved.txt")
    agent.expect(APPROVAL_BLOCK.format(cmd="touch approved.txt"))
    assert not (work_dir(tmp_path) / "approved.txt").exists()
    agent.send("1")
    agent.expect("[demo] idle")
    agent.expect("demo❯ ")
    assert (work_dir(tmp_path) / "approved.txt").exists()


def test_escape_denies_and_runs_nothing(spawn: Any, tmp_path: Path) -> None:
    agent = spawn("--speed", "0.2")
    agent.expect("demo❯ ")
    agent.task("RUN: touch denied.txt")
    agent.expect(APPROVAL_BLOCK.format(cmd="touch denied.txt"))
    agent.send("\x1b")
    agent.expect("Denied by operator.")
    agent.expect("[demo] idle")
    assert not (work_dir(tmp_path) / "denied.txt").exists()


def test_keys_typed_before_the_prompt_do_not_answer_it(spawn: Any, tmp_path: Path) -> None:
    agent = spawn("--speed", "1")
    agent.expect("demo❯ ")
    agent.task("RUN: touch early.txt")
    agent.send("y")  # typed while the agent is still thinking
    agent.expect("Allow this command?")
    after = agent.drain(0.8)
    assert "Denied" not in after
    assert "[demo] idle" not in after
    assert not (work_dir(tmp_path) / "early.txt").exists()
    agent.send("y")
    agent.expect("[demo] idle")
    assert (work_dir(tmp_path) / "early.txt").exists()


def test_spinner_while_working_and_escape_interrupts(spawn: Any) -> None:
    agent = spawn("--speed", "1")
    agent.expect("demo❯ ")
    agent.task("refactor the parser")
    agent.expect(" (esc to interrupt)")
    assert re.search(r"\r\x1b\[K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \w+… \(esc to interrupt\)", agent.output.decode())
    agent.send("\x1b")
    agent.expect("Interrupted.")
    agent.expect("[demo] idle")


def test_usage_log_totals_are_the_sum_of_the_calls(spawn: Any, tmp_path: Path) -> None:
    log = tmp_path / "usage" / "d1.jsonl"
    agent = spawn(
        "--speed", "0", "--session-id", SESSION, "--model", "demo-opus", "--usage-log", str(log)
    )  # fmt: skip
    agent.expect("demo❯ ")
    agent.task("add a --verbose flag")
    agent.expect("[demo] idle")
    agent.task("RUN: echo hello")
    agent.expect("Allow this command?")
    agent.send("y")
    agent.expect("hello")
    agent.expect("[demo] idle")
    agent.task("exit")
    assert agent.wait_exit() == 0

    records = log_lines(log)
    calls: dict[str, dict[str, int]] = {}
    for record in records:
        if record["type"] == "assistant":
            assert record["sessionId"] == SESSION
            assert record["requestId"].startswith("req_") and record["timestamp"].endswith("Z")
            message = record["message"]
            assert message["model"] == "demo-opus"
            usage = {k: v for k, v in message["usage"].items() if k.endswith("tokens")}
            assert set(usage) == {
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            }
            # Blocks of one answer repeat the same usage; count it once per message.
            assert calls.setdefault(message["id"], usage) == usage
    assert len(calls) >= 5  # three calls for the free task, two around the command
    states = [r for r in records if r["type"] == "cost-state"]
    assert len(states) == 2
    final = states[-1]["modelUsage"]["demo-opus"]
    total = {key: sum(c[key] for c in calls.values()) for key in next(iter(calls.values()))}
    assert final["inputTokens"] == total["input_tokens"]
    assert final["outputTokens"] == total["output_tokens"]
    assert final["cacheCreationInputTokens"] == total["cache_creation_input_tokens"]
    assert final["cacheReadInputTokens"] == total["cache_read_input_tokens"]
    price, known = price_for("demo-opus")
    expected = (
        total["input_tokens"] * price.input
        + total["output_tokens"] * price.output
        + total["cache_creation_input_tokens"] * price.cache_write
        + total["cache_read_input_tokens"] * price.cache_read
    ) / 1e6
    assert known and states[-1]["hasUnknownModelCost"] is False
    assert states[-1]["totalCostUSD"] == pytest.approx(expected, abs=1e-6)
    assert final["costUSD"] == states[-1]["totalCostUSD"]


def test_same_seed_same_token_counts(spawn: Any, tmp_path: Path) -> None:
    def usages(log: Path) -> list[dict[str, int]]:
        agent = spawn("--speed", "0", "--usage-log", str(log))
        agent.expect("demo❯ ")
        agent.task("write the release notes")
        agent.expect("[demo] idle")
        agent.task("exit")
        assert agent.wait_exit() == 0
        return [r["message"]["usage"] for r in log_lines(log) if r["type"] == "assistant"]

    first, second = usages(tmp_path / "a.jsonl"), usages(tmp_path / "b.jsonl")
    assert first and first == second


def test_json_scenario_at_speed_zero_is_quick(spawn: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    log = tmp_path / "usage.jsonl"
    turns = [
        {"expect": "hello", "say": "Hello there, operator.", "tokens": {"input_tokens": 1000}},
        {"expect": "build", "say": "Building now.", "run": "echo built > out.txt"},
    ]
    scenario.write_text(json.dumps(turns))
    started = time.monotonic()
    agent = spawn("--speed", "0", "--scenario", str(scenario), "--usage-log", str(log))
    agent.expect("demo❯ ")
    agent.task("something unrelated")  # does not match `expect`: free text, turn 1 waits
    agent.expect("[demo] idle")
    agent.task("hello agent")
    agent.expect("Hello there, operator.")
    agent.expect("[demo] idle")
    agent.task("please build it")
    agent.expect("Building now.")
    agent.expect(APPROVAL_BLOCK.format(cmd="echo built > out.txt"))
    agent.send("\r")
    agent.expect("[demo] idle")
    agent.task("exit")
    assert agent.wait_exit() == 0
    assert time.monotonic() - started < 8.0  # seconds at speed 1; generous for a busy box
    assert (work_dir(tmp_path) / "out.txt").read_text() == "built\n"
    texts = {
        r["message"]["content"][0].get("text"): r["message"]["usage"]
        for r in log_lines(log)
        if r["type"] == "assistant"
    }
    assert texts["Hello there, operator."]["input_tokens"] == 1000


def test_toml_scenario_with_auto_task(spawn: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('[[turns]]\nexpect = "greet"\nsay = "Greetings from TOML."\n')
    agent = spawn("--speed", "0", "--scenario", str(scenario), "--auto-task", "greet me")
    banner = agent.expect("Greetings from TOML.")
    assert "demo agent 0.1.0 · model demo-sonnet · cwd " in banner
    assert "\r\n❯ greet me\r\n" in banner
    agent.expect("[demo] idle")


def test_limit_turn_shows_a_usage_limit_after_its_work(spawn: Any, tmp_path: Path) -> None:
    """A `limit` turn is matched by bead work too (other turns never are): the bead's turn
    runs as usual, then the limit screen stays above the idle prompt."""
    scenario = tmp_path / "scenario.json"
    turns = [{"say": "Plain answer."}, {"expect": "limit me", "limit": "2 minutes"}]
    scenario.write_text(json.dumps(turns))
    agent = spawn("--speed", "0", "--scenario", str(scenario))
    agent.expect("demo❯ ")
    agent.task("[tundra work] bead #1: not scripted.")  # the first turn has no limit: kept
    assert "usage limit" not in agent.expect("[demo] idle")
    agent.task("free text")
    agent.expect("Plain answer.")
    agent.expect("[demo] idle")
    agent.task("[tundra work] bead #7: limit me.")
    shown = agent.expect("[demo] idle")
    assert "I'll read bead #7 first." in shown
    assert "Claude usage limit reached · resets in 2 minutes\r\n" in shown
    agent.task("exit")
    assert agent.wait_exit() == 0


def test_limit_must_be_a_reset_time(tmp_path: Path) -> None:
    from tundra_tui.demo_agent.scenario import ScenarioError, load_scenario

    scenario = tmp_path / "bad.json"
    scenario.write_text('[{"limit": " "}]')
    with pytest.raises(ScenarioError, match="limit must be"):
        load_scenario(scenario)


@pytest.mark.parametrize("keys", ["exit\r", "\x04"], ids=["exit", "ctrl-d"])
def test_exit_and_ctrl_d_end_with_status_zero(spawn: Any, keys: str) -> None:
    agent = spawn("--speed", "0", "--name", "alice")
    assert "name alice" in agent.expect("demo❯ ")
    agent.send(keys)
    assert agent.wait_exit() == 0


def test_sigterm_exits_promptly(spawn: Any) -> None:
    agent = spawn("--speed", "1")
    agent.expect("demo❯ ")
    agent.task("a long task")
    agent.expect("(esc to interrupt)")
    agent.process.kill(signal.SIGTERM)
    assert agent.wait_exit(timeout=3) == 128 + signal.SIGTERM


def test_bad_scenario_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.json"
    scenario.write_text('[{"say": "x", "tokens": {"bogus": 1}}]')
    result = subprocess.run(
        [sys.executable, "-m", "tundra_tui.demo_agent", "--scenario", str(scenario)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert "tokens may only set" in result.stderr


def test_flush_forgets_keys_already_typed() -> None:
    from tundra_tui.demo_agent.terminal import Keyboard, raw_input

    master, slave = os.openpty()
    try:
        keyboard = Keyboard(slave)
        with raw_input(slave):
            os.write(master, b"y\x1b[A")
            assert keyboard.read(DEADLINE) == "y"
            os.write(master, b"yes")
            time.sleep(0.1)
            keyboard.flush()
            assert keyboard.read(0.1) is None
            os.write(master, b"\x1b")
            assert keyboard.read(DEADLINE) == "\x1b"  # a lone Esc, told apart from a sequence
    finally:
        os.close(master)
        os.close(slave)


def test_spinner_fits_the_terminal_after_a_resize(spawn: Any) -> None:
    agent = spawn("--speed", "1")
    agent.expect("demo❯ ")
    agent.process.setwinsize(40, 30)  # SIGWINCH
    time.sleep(0.2)
    agent.task("tidy up")
    agent.expect("(esc to interrupt)")
    agent.drain(0.5)
    rows = re.findall(r"\r\x1b\[K([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏][^\r\n\x1b]*)", agent.output.decode())
    assert rows
    for row in rows:
        assert len(row) <= 29 and row.endswith("… (esc to interrupt)")


def test_the_screen_shows_one_state_at_a_time(spawn: Any) -> None:
    """Stale idle or approval text would make the session host misread the state."""
    import pyte

    def visible(agent: Agent) -> str:
        screen = pyte.Screen(120, 40)
        pyte.ByteStream(screen).feed(agent.output)
        return "\n".join(line.rstrip() for line in screen.display)

    agent = spawn("--speed", "1")
    agent.expect("demo❯ ")
    agent.task("RUN: echo checked")
    agent.expect("(esc to interrupt)")
    working = visible(agent)
    assert "[demo] idle" not in working and "\ndemo❯" not in working
    assert "\n❯ RUN: echo checked\n" in working
    agent.expect("1/y approve · 2/n/Esc deny")
    asking = visible(agent)
    assert "(esc to interrupt)" not in asking and "[demo] idle" not in asking
    agent.send("1")
    agent.expect("[demo] idle")
    agent.expect("demo❯ ")
    idle = visible(agent)
    assert "Allow this command?" not in idle and "(esc to interrupt)" not in idle
    assert "  ⎿  $ echo checked\n  ⎿  checked\n" in idle


def test_keep_working_takes_up_a_task_when_left_idle() -> None:
    """An idle demo agent with --keep-working starts a task of its own, so a demo stays busy."""
    from tundra_tui.demo_agent.agent import SELF_TASKS

    proc = ptyprocess.PtyProcessUnicode.spawn(
        [
            sys.executable,
            "-m",
            "tundra_tui.demo_agent",
            "--seed",
            "3",
            "--speed",
            "0",
            "--approval-rate",
            "0",
            "--keep-working",
            "0.2",
        ],
        dimensions=(24, 100),
    )
    try:
        seen = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "Worked for" not in seen:
            if proc.isalive() and select.select([proc.fd], [], [], 0.2)[0]:
                seen += proc.read(4096)
        assert any(task in seen for task in SELF_TASKS), seen[-500:]
        assert "Worked for" in seen
    finally:
        proc.terminate(force=True)
