"""Every issue-10 benchmark, one after another, then their summaries together.

    .venv/bin/python benchmarks/bench_issue10.py [--quick] [--only echo,cli] [--minutes 10]

Runs bench_echo, bench_tui_echo, bench_cli, bench_long_line, bench_tui_frame and
bench_rss in turn (never two at once: they would measure each other), printing each
one's output as it comes and, at the end, each one's summary lines. `--quick` is
passed on; `--minutes` goes to bench_rss. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "echo": "bench_echo.py",
    "tui_echo": "bench_tui_echo.py",
    "cli": "bench_cli.py",
    "long_line": "bench_long_line.py",
    "tui_frame": "bench_tui_frame.py",
    "rss": "bench_rss.py",
}


def run(name: str, argv: list[str]) -> list[str]:
    """Run one script, echoing its output; the lines after its `summary` line."""
    print(f"\n===== {name}: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(HERE / SCRIPTS[name]), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    process.wait()
    print(f"===== {name} took {time.monotonic() - started:.0f} s (exit {process.returncode})")
    if "summary" in lines:
        return lines[lines.index("summary") + 1 :]
    return [f"  (no summary; exit {process.returncode})"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SCRIPTS)}")
    parser.add_argument("--minutes", type=float, help="bench_rss's --minutes")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SCRIPTS)
    unknown = [name for name in chosen if name not in SCRIPTS]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    summaries = {}
    for name in chosen:
        argv = ["--quick"] if args.quick else []
        if name == "rss" and args.minutes is not None:
            argv += ["--minutes", str(args.minutes)]
        summaries[name] = run(name, argv)
    print("\n===== summaries")
    for name, lines in summaries.items():
        print(f"{SCRIPTS[name]}")
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
