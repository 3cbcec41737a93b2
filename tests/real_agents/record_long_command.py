"""Record real approval screens for a shell command longer than the screen is wide.

A CLI wraps such a command onto the rows under its ``$ `` row; reading only the
first row would show the operator (and the deny-list) a cut command. This runs
each installed CLI through our ``SessionHost`` exactly as ``record_matrix`` does
(same sandbox, seeding and fake model server), asks it to run each command of
``COMMANDS`` (``RUN: <cmd>``), saves the approval screen and denies it. Captures go
to ``tests/fixtures/screens/long_command/<cli>/<version>/<size>/awaiting_approval-<name>.txt``
(+ ``.ansi``), and ``index.json`` there lists the exact commands.

    .venv/bin/python -m tests.real_agents.record_long_command --cli opencode --cli codex

Only the pinned versions (``matrix_versions.txt``) are recorded; the matrix is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_agent_harness
import record_matrix
from agent_specs import SPECS
from record_matrix import SIZES, Outcome, Run, Version, kind_is

from tundra_tui.session.detect import matched_prompt

OUT = real_agent_harness.SCREENS_DIR / "long_command"

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]


def _long_words() -> str:
    """``touch long-approved.txt && echo`` and numbered words to about 300 characters."""
    words, n = ["touch", "long-approved.txt", "&&", "echo"], 0
    while len(" ".join(words)) < 300:
        words.append(f"{_WORDS[n % len(_WORDS)]}{n:02d}")
        n += 1
    return " ".join(words)


def _long_path() -> str:
    """``ls -d`` of one path of about 300 characters: no space to wrap at."""
    parts, n = [], 0
    while len("ls -d /tmp/" + "/".join(parts)) < 300:
        parts.append(f"dir{n:02d}-{_WORDS[n % len(_WORDS)]}")
        n += 1
    return "ls -d /tmp/" + "/".join(parts)


def _long_token() -> str:
    """``echo`` and one token of about 300 letters and digits: no space, hyphen or slash."""
    token = "".join(f"{word}{n:02d}" for n, word in enumerate(_WORDS * 2))
    return "echo " + token[:295]


COMMANDS = {"long_words": _long_words(), "long_path": _long_path(), "long_token": _long_token()}
"""Scenario name -> the exact command the fake model asks to run."""


class LongRun(Run):
    """A ``record_matrix.Run`` that saves under ``long_command/``."""

    def save(self, state: str, scenario: str, screen: str, note: str = "") -> None:
        folder = OUT / self.spec.name / self.version.version / self.size
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{state}-{scenario}.txt").write_text(self.sanitise(screen), encoding="utf-8")
        sidecar = self.coloured(screen)
        if sidecar is not None:
            (folder / f"{state}-{scenario}.ansi").write_text(sidecar, encoding="utf-8")
        self.out.captures.append({"size": self.size, "scenario": scenario, "note": note})
        print(f"  {self.spec.name} {self.size}: {state}-{scenario} {note}", flush=True)


def session(version: Version, size: str, out: Outcome, scenarios: list[str]) -> None:
    run = LongRun(SPECS[version.cli], version, size, out)
    try:
        run.start()
        ready = record_matrix.START_READY.get(version.cli)
        if ready is not None:
            run.wait_screen(lambda _: ready(run.screen()), run.spec.start_timeout)
        run.stable(quiet=3.0, timeout=run.spec.start_timeout)
        for scenario in scenarios:
            command = COMMANDS[scenario]
            run.submit(f"RUN: {command}")
            if not run.wait_request(kind_is("run-tool", "run-fenced"), 90):
                run.skip(scenario, "the model request never came")
                continue
            # The prompt drawn (its runtime's approval rule matches), then left to settle.
            run.wait_screen(
                lambda _: matched_prompt(version.cli, run.screen().splitlines()) is not None, 25
            )
            screen, steady = run.stable(quiet=2.0, timeout=25)
            run.save("awaiting_approval", scenario, screen, "" if steady else "still changing")
            run.press(run.spec.deny_keys)
            run.stable(quiet=2.0, timeout=25)
    except Exception as error:  # keep the other size going; say what failed
        run.skip("all", f"session failed: {type(error).__name__}: {str(error)[:200]}")
    finally:
        with contextlib.suppress(Exception):
            run.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", action="append", choices=sorted(SPECS), help="only these CLIs")
    parser.add_argument("--size", action="append", choices=sorted(SIZES), help="only these sizes")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(COMMANDS), help="only these commands"
    )
    args = parser.parse_args(argv)
    scenarios = args.scenario or list(COMMANDS)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "index.json").write_text(json.dumps(COMMANDS, indent=1) + "\n")
    for version in record_matrix.versions():
        if not version.pinned or (args.cli and version.cli not in args.cli):
            continue
        if not version.binary().exists():
            print(f"== {version.cli} {version.version}: not installed", flush=True)
            continue
        print(f"== {version.cli} {version.version}", flush=True)
        out = Outcome()
        threads = [
            threading.Thread(target=session, args=(version, size, out, scenarios), daemon=True)
            for size in (args.size or SIZES)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for skipped in out.skipped:
            print(f"   skipped: {skipped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
