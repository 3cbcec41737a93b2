"""The demo agent's loop: an idle prompt, turns that stream an answer, approvals, usage.

The strings the session host detects states by are constants here (`PROMPT`, `IDLE_STATUS`,
`APPROVAL_QUESTION`, `APPROVAL_HINT`, the spinner in `terminal.py`); change them only together
with the demo runtime's detection rules.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tundra_tui import __version__
from tundra_tui.demo_agent.scenario import ScenarioError, Script, Turn, load_scenario
from tundra_tui.demo_agent.terminal import (
    BACKSPACE,
    CTRL_C,
    CTRL_D,
    CTRL_U,
    ENTER,
    EOF,
    ESC,
    Keyboard,
    Screen,
    printable,
    raw_input,
)
from tundra_tui.demo_agent.usage import UsageLog, town_log_path
from tundra_tui.demo_agent.work import (
    acknowledge,
    answer_mail,
    do_bead,
    is_role_prompt,
    shell_env,
    tool,
)
from tundra_tui.domain.handover import MAIL_TAG, WORK_TAG, parse_mail, parse_work

PROMPT = "demo❯ "
HISTORY_PROMPT = "❯ "
"""How a taken task stays on screen; not `PROMPT`, which must mean "idle" only."""
IDLE_STATUS = "[demo] idle"
APPROVAL_QUESTION = "Allow this command?"
APPROVAL_HINT = "1/y approve · 2/n/Esc deny"
DENIED = "Denied by operator."
INTERRUPTED = "Interrupted."
EXIT_WORDS = frozenset({"exit", "/exit", "quit"})
USAGE_LIMIT = "Claude usage limit reached · resets in {}"
"""What a scenario turn's `limit` shows once its work is done; the demo runtime's rate-limit
rule matches it and the daemon parses the reset time from it."""
TICK = 0.1
"""Spinner period: ~10 Hz, like real agents, and no faster than our detection needs."""
MAX_TOOL_LINES = 20
MIN_TURN_SECONDS = 1.0
"""Every turn shows as working at least this long, whatever `--speed`: the daemon tells one
idle turn from the next by seeing the agent work in between, and a turn over before its screen
is read looks like no turn at all (mail sent meanwhile would then wait for another turn)."""

_RUN = re.compile(r"RUN:\s*(.+)")
HARMLESS = ("ls", "git status --short", "pwd", "date")
SOURCES = ("src/app.py", "src/config.py", "src/models.py", "src/cli.py", "src/storage.py")
TESTS = ("tests/test_app.py", "tests/test_cli.py", "tests/test_storage.py")
THINK_VERBS = ("Thinking", "Pondering", "Considering", "Sketching", "Mulling")
OPENERS = (
    "I'll start by reading the code this touches.",
    "Let me look at how this is wired up before changing anything.",
    "First I'll find where this lives in the code base.",
)
CLOSERS = (
    "Done. The change is in place and a new test covers it.",
    "Finished: the edit is small and the existing tests still pass.",
    "That's it. I kept the change minimal and noted why in a docstring.",
)


class Interrupted(Exception):
    """Esc or Ctrl-C while working: the turn stops where it is."""


class Terminated(Exception):
    """SIGTERM or SIGHUP: leave at once, restoring the terminal on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True)
class Options:
    """The command line, checked."""

    seed: int | None
    speed: float
    scenario: Path | None
    auto_task: str | None
    approval_rate: float
    model: str
    name: str | None
    usage_log: Path | None
    session_id: str | None
    keep_working: float = 0.0
    """Idle seconds (0 = never) after which the agent takes up a task of its own."""


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _session_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError("must be a UUID") from error


def parse_args(argv: list[str] | None) -> Options:
    """Parse the flags; `argparse` exits with status 2 on bad ones, as CLIs do."""
    parser = argparse.ArgumentParser(
        prog="python -m tundra_tui.demo_agent",
        description="A stand-in coding agent for auto-tundra demos and tests.",
    )
    add = parser.add_argument
    add("--seed", type=int, help="seed for every random choice (same seed, same tokens)")
    add("--speed", type=_non_negative, default=1.0, help="delay multiplier; 0 = no delays")
    add("--scenario", type=Path, help="JSON or TOML list of scripted turns")
    add("--auto-task", metavar="TEXT", help="start working on TEXT at once")
    add("--approval-rate", type=_fraction, default=0.3, help="chance a free task runs a command")
    add("--model", default="demo-sonnet", help="model name in the usage log and pricing")
    add("--name", help="agent name shown in the banner")
    add(
        "--usage-log",
        type=Path,
        metavar="PATH",
        help="write the usage log here (default: the town's .tundra/usage/AGENT.jsonl when run "
        "by a town's daemon, else none)",
    )
    add("--session-id", type=_session_id, help="session UUID (names the usage log)")
    add(
        "--keep-working",
        type=_non_negative,
        default=0.0,
        metavar="SECONDS",
        help="when idle this long with nothing typed, start a task of its own (0 = never)",
    )
    ns = parser.parse_args(argv)
    return Options(
        ns.seed,
        ns.speed,
        ns.scenario,
        ns.auto_task,
        ns.approval_rate,
        ns.model,
        ns.name,
        ns.usage_log,
        ns.session_id,
        ns.keep_working,
    )


SELF_TASKS = (
    "run the test suite and fix what fails",
    "tidy the imports in the store package",
    "review the open pull request",
    "write a changelog entry for the last merge",
    "profile the kanban query",
)
"""What an agent left idle with `--keep-working` takes up next (free tasks: whether one asks
to run a command is up to `--approval-rate`, as for any free task)."""


class DemoAgent:
    """One interactive session: read a task at the prompt, work on it, repeat until `exit`."""

    def __init__(
        self, options: Options, keyboard: Keyboard, screen: Screen, log: UsageLog, script: Script
    ) -> None:
        self.options = options
        self.keyboard = keyboard
        self.screen = screen
        self.log = log
        self.script = script
        self.rng = random.Random(options.seed)
        self.turns = 0
        self._next_tick = 0.0
        self._turn_output = 0
        self._messages = 0

    def run(self) -> int:
        """Banner, then the prompt loop; returns the exit status."""
        details = [f"name {self.options.name}"] if self.options.name else []
        details.append(f"session {self.log.session_id}")
        self.screen.line(
            f"demo agent {__version__} · model {self.options.model} · cwd {self.log.cwd}"
        )
        self.screen.line("  " + " · ".join(details))
        if self.options.auto_task:
            self.screen.line()
            self.screen.line(HISTORY_PROMPT + printable(self.options.auto_task))
            self.turn(self.options.auto_task)
        while (task := self.read_task()) is not None:
            self.turn(task)
        self.screen.line("Bye.")
        return 0

    # idle

    def read_task(self) -> str | None:
        """Show the idle status and prompt and read one line; None means exit."""
        total = self.log.total
        tokens = (
            total.input_tokens
            + total.output_tokens
            + total.cache_creation_input_tokens
            + total.cache_read_input_tokens
        )
        turns = f"{self.turns} turn" + ("" if self.turns == 1 else "s")
        status = (
            f"{IDLE_STATUS} · {turns} · {tokens:,} tokens · ${self.log.cost:.4f} · `exit` to quit"
        )
        self.screen.line()
        self.screen.line(status)
        self.screen.write(PROMPT)
        text = ""
        ctrl_c_armed = False
        wait = self.options.keep_working
        deadline = time.monotonic() + wait * (1 + self.rng.random()) if wait > 0 else None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            key = self.keyboard.read(timeout)
            if key is None:
                if deadline is not None and not text and time.monotonic() >= deadline:
                    task = self.rng.choice(SELF_TASKS)
                    self._redraw_input(text, task, above=status, prompt=HISTORY_PROMPT)
                    self.screen.write("\n")
                    return task
                continue
            armed, ctrl_c_armed = ctrl_c_armed, False
            if key in ENTER:
                if not text.strip():
                    continue  # like real CLIs: an empty Enter does nothing
                # Once the task is taken the idle status and `demo❯` go, so neither shows while
                # working; the task stays in the history as `❯ task`, as in Claude Code.
                self._redraw_input(text, text, above=status, prompt=HISTORY_PROMPT)
                self.screen.write("\n")
                return None if text.strip() in EXIT_WORDS else text.strip()
            if key == EOF or (key == CTRL_D and not text):
                self.screen.write("\n")
                return None
            if key == CTRL_C:
                if not text and armed:
                    self.screen.write("\n")
                    return None
                ctrl_c_armed = not text
                self._redraw_input(text, "")
                text = ""
            elif key == CTRL_U:
                self._redraw_input(text, "")
                text = ""
            elif key in BACKSPACE:
                self._redraw_input(text, text[:-1])
                text = text[:-1]
            elif len(key) == 1 and key.isprintable():
                text += key
                self.screen.write(key)

    def _redraw_input(
        self, old: str, new: str, above: str | None = None, prompt: str = PROMPT
    ) -> None:
        """Redraw the prompt line, which the terminal may have wrapped onto several rows, and
        erase the line `above` it too when given."""
        up = self.screen.rows_for(PROMPT + old) - 1
        if above is not None:
            up += self.screen.rows_for(above)
        self.screen.write((f"\x1b[{up}A" if up else "") + "\r\x1b[J" + prompt + new)

    # working

    def turn(self, task: str) -> None:
        """Work on `task` to the end, an interrupt or a denial; then log the session totals."""
        started = time.monotonic()
        self._turn_output = 0
        self._messages = 1
        self.log.user(task)
        scripted: Turn | None = None
        try:
            # By the tag it starts with: a mail body may quote a work header, and the other
            # way round.
            bead = parse_work(task) if task.startswith(WORK_TAG) else None
            mail = parse_mail(task) if task.startswith(MAIL_TAG) else []
            if bead is not None:
                scripted = self.script.limit_for(task)
                do_bead(self, bead)
            elif mail:
                answer_mail(self, mail)
            elif is_role_prompt(task, self.name):
                acknowledge(self)
            else:
                scripted = self.script.next_for(task)
                self._play(task, scripted)
            self._linger(started)
        except Interrupted:
            self.screen.stop()
            self.screen.line(INTERRUPTED)
        finally:
            self.screen.stop()
        elapsed = time.monotonic() - started
        self.screen.line(f"✻ Worked for {elapsed:.0f}s · ↓ {self._turn_output:,} tokens")
        self.turns += 1
        self.log.turn_end(int(elapsed * 1000), self._messages)
        if self.log.error:
            self.screen.line(f"warning: {self.log.error}")
            self.log.error = None
        if scripted is not None and scripted.limit is not None:
            self.screen.line(USAGE_LIMIT.format(printable(scripted.limit)))

    def _linger(self, started: float) -> None:
        """Keep the spinner up until the turn has lasted MIN_TURN_SECONDS."""
        deadline = started + MIN_TURN_SECONDS
        if time.monotonic() >= deadline:
            return
        self.screen.spin("Wrapping up")
        while (now := time.monotonic()) < deadline:
            time.sleep(min(TICK, deadline - now))
            self.screen.tick()

    def _play(self, task: str, turn: Turn | None) -> None:
        overrides = turn.tokens if turn else {}
        match = _RUN.search(task)
        command = (turn.run if turn else None) or (match.group(1).strip() if match else None)
        if turn and turn.say:
            self._answer(turn.say, [tool("Bash", command=command)] if command else [], overrides)
        elif command:
            self._answer(f"I will run {command}.", [tool("Bash", command=command)], overrides)
        else:
            self._explore(task, overrides)
            if self.rng.random() < self.options.approval_rate:
                command = self.rng.choice(HARMLESS)
                text = f"Let me check the project with `{command}`."
                self._answer(text, [tool("Bash", command=command)], overrides)
        if command is None:
            if not (turn and turn.say):
                self._answer(self.rng.choice(CLOSERS), [], overrides)
            return
        if not self._approve(command):
            self.screen.line(DENIED)
            return
        status, _ = self._run(command)
        if status == 0:
            self._answer("Done. The command finished; nothing else to do.", [], overrides)
        else:
            self._answer(f"The command failed with exit status {status}.", [], overrides)

    def _explore(self, task: str, overrides: dict[str, int]) -> None:
        """The default narration: read two files, plan, edit one."""
        source, test = self.rng.choice(SOURCES), self.rng.choice(TESTS)
        reads = [tool("Read", file_path=source), tool("Read", file_path=test)]
        self._answer(self.rng.choice(OPENERS), reads, overrides)
        self.screen.spin("Reading")
        for path in (source, test):
            lines = self.rng.randint(40, 400)
            self._pause(0.3)
            self.screen.line(f"  Read {path} ({lines} lines)")
            self.log.add_tokens(lines * 8)
        short = task if len(task) <= 60 else task[:59] + "…"
        plan = (
            f"Here is the plan for “{short}”:\n"
            f"1. Update {source} to handle the new case.\n"
            f"2. Add a regression test to {test}.\n"
            "3. Keep the public interface unchanged."
        )
        self._answer(plan, [tool("Edit", file_path=source)], overrides)
        self.screen.spin("Editing")
        self._pause(0.5)
        added, removed = self.rng.randint(2, 30), self.rng.randint(0, 10)
        self.screen.line(f"  Update {source}")
        result = f"  ⎿  Updated {source} with {added} additions and {removed} removals"
        self.screen.line(result)
        self.log.add_context(result)

    def _answer(self, text: str, tools: list[dict[str, Any]], overrides: dict[str, int]) -> None:
        """One model call: think, stream `text`, then log the call's usage."""
        started = time.monotonic()
        self.screen.spin(self.rng.choice(THINK_VERBS))
        self._pause(0.8)
        for number, line in enumerate(text.splitlines() or [""]):
            words = line.split(" ")
            prefix = "● " if number == 0 else "  "
            start = 0
            while start < len(words):
                end = start + self.rng.randint(1, 3)
                chunk = " ".join(words[start:end])
                self.screen.stream(printable(prefix + chunk if start == 0 else " " + chunk))
                start = end
                self._pause(0.06)
            self.screen.end_stream()
        blocks = [{"type": "text", "text": text}, *tools]
        duration = int((time.monotonic() - started) * 1000)
        usage = self.log.call(blocks, "tool_use" if tools else "end_turn", overrides, duration)
        self._turn_output += usage.output_tokens
        self._messages += 1

    def _pause(self, seconds: float) -> None:
        """Wait `seconds` x speed, spinning at ~10 Hz; Esc or Ctrl-C interrupts the turn.

        Other keys typed while working are dropped: a task is only taken at the prompt.
        """
        deadline = time.monotonic() + seconds * self.options.speed
        while True:
            now = time.monotonic()
            if now >= self._next_tick:
                self.screen.tick()
                self._next_tick = now + TICK
            remaining = deadline - now
            wait = max(0.0, min(remaining, self._next_tick - now))
            if not self.keyboard.interactive or self.keyboard.closed:
                time.sleep(wait)  # a piped script's next lines wait for the next prompt
            elif self.keyboard.read(wait) in (ESC, CTRL_C):
                raise Interrupted
            if remaining <= 0:
                return

    def _approve(self, command: str, *, echo: bool = True) -> bool:
        """Ask once; only a key typed after the question appeared can answer it. With `echo`
        off an approved command is not shown here (whoever runs it shows it)."""
        self.screen.stop()
        lines = [
            APPROVAL_QUESTION,
            *(f"  {printable(part)}" for part in command.splitlines() or [""]),
            "❯ 1. Yes",
            "  2. No",
            APPROVAL_HINT,
        ]
        self.keyboard.flush()
        self.screen.write("\n".join(lines) + "\n")
        while True:
            key = self.keyboard.read(None)
            if key in ("1", "y", "Y", *ENTER):
                approved = True
                break
            if key in ("2", "n", "N", ESC, CTRL_C, EOF):
                approved = False
                break
        # Erase the question so a stale prompt never reads as "awaiting approval" later.
        self.screen.erase_lines(lines)
        if echo or not approved:
            self.screen.line(f"  {'⎿' if approved else '✗'}  $ {printable(command)}")
        return approved

    # what work and mail need (`work.Hands`)

    @property
    def name(self) -> str:
        """Who this agent is: `--name`, else the name its town gave it."""
        return self.options.name or os.environ.get("TUNDRA_AGENT", "") or "demo"

    def say(self, text: str, tools: list[dict[str, Any]]) -> None:
        self._answer(text, tools, {})

    def show(self, text: str) -> None:
        self.screen.line(printable(text))

    def shell(self, command: str, *, shown: int = MAX_TOOL_LINES) -> tuple[int, list[str]]:
        """Show the command as approved-or-free tool use, then run it."""
        self.screen.stop()
        self.screen.line(f"  ⎿  $ {printable(command)}")
        return self._run(command, shown=shown)

    def may_run(self, command: str) -> bool:
        """Ask the operator at `--approval-rate`; otherwise the command needs no asking."""
        if self.rng.random() >= self.options.approval_rate:
            return True
        return self._approve(command, echo=False)

    def _run(self, command: str, *, shown: int = MAX_TOOL_LINES) -> tuple[int, list[str]]:
        """Run `command` with /bin/sh here, showing up to `shown` lines of its output; Esc
        kills it. Returns the exit status and every output line."""
        started = time.monotonic()
        self.screen.spin("Running")
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so an interrupt can kill the whole pipeline
            env=shell_env(),
        )
        assert process.stdout is not None
        lines: list[str] = []
        pending = b""
        try:
            fd = process.stdout.fileno()
            while True:
                ready, _, _ = select.select([fd], [], [], TICK / 2)
                data = os.read(fd, 65536) if ready else None
                if data == b"":
                    break
                if data:
                    *done, pending = (pending + data).split(b"\n")
                    for raw in done:
                        self._tool_line(lines, raw, shown)
                self._pause(0)
            if pending:
                self._tool_line(lines, pending, shown)
            status = process.wait()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            process.stdout.close()
            self.log.tool_ms += int((time.monotonic() - started) * 1000)
        if len(lines) > shown:
            self.screen.line(f"     … +{len(lines) - shown} lines")
        elif not lines:
            self.screen.line("  ⎿  (no output)")
        if status:
            self.screen.line(f"  ⎿  exit status {status}")
        self.log.add_context("\n".join(lines) or "(no output)")
        return status, lines

    def _tool_line(self, lines: list[str], raw: bytes, shown: int) -> None:
        """Show one line of command output; past `shown` they are only counted."""
        line = printable(raw.decode("utf-8", "replace").rstrip("\r"))
        if len(lines) < shown:
            self.screen.line(("  ⎿  " if not lines else "     ") + line)
        lines.append(line)


def main(argv: list[str] | None = None) -> int:
    """Run the demo agent on this process's terminal; returns the exit status."""
    options = parse_args(argv)
    try:
        turns = load_scenario(options.scenario) if options.scenario else []
    except ScenarioError as error:
        print(f"demo agent: {error}", file=sys.stderr)
        return 2
    cwd = os.getcwd()
    session_id = options.session_id or str(uuid.uuid4())
    log = UsageLog(
        options.usage_log or town_log_path(os.environ),
        session_id,
        options.model,
        cwd,
        __version__,
    )
    screen = Screen(sys.stdout.fileno())
    keyboard = Keyboard(sys.stdin.fileno())

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    signal.signal(signal.SIGWINCH, lambda signum, frame: screen.resize())
    agent = DemoAgent(options, keyboard, screen, log, Script(turns))
    try:
        with raw_input(keyboard.fd):
            return agent.run()
    except Terminated as signalled:
        return 128 + signalled.signum
    except OSError:  # the terminal vanished under a write
        return 1
    finally:
        with suppress(OSError):
            screen.write("\x1b[?25h")
