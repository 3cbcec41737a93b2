"""Re-record the version matrix of real screens (issue 14).

For each (CLI, version, size) this runs the real CLI through our ``SessionHost``
(``host_driver.HostDriver``: a PTY, our emulator) against the fake model server,
in a temp HOME seeded by ``agent_specs``, and saves the screen at each scenario
as ``tests/fixtures/screens/matrix/<cli>/<version>/<size>/<state>-<scenario>.txt``
(rows as the emulator shows them, trailing spaces dropped) and beside it the same rows
with their colours, ``<state>-<scenario>.ansi`` (``screen_ansi``; ``cat`` it). The state in the name
is what the scenario means to a person; ``index.json`` beside it lists every
capture and every scenario a version could not reach, with the reason.

    scripts/install-matrix.sh                       # install the versions first
    .venv/bin/python -m tests.real_agents.record_matrix                  # everything
    .venv/bin/python -m tests.real_agents.record_matrix --cli claude --versions 2.0.76

The versions are listed in ``matrix_versions.txt``; a version's old captures are
replaced when it is recorded again. Both sizes of one version run side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import re
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_agent_harness
import screen_ansi
from agent_specs import SPECS, AgentSpec
from fake_model_server import start_server
from host_driver import HostDriver
from real_agent_harness import AGENTS_DIR, BINARIES, Sandbox, git_init, reap_by_home

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "matrix_versions.txt"
OUT = real_agent_harness.SCREENS_DIR / "matrix"
SIZES = {"80x24": (80, 24), "200x50": (200, 50)}
FIRST_TOKEN_DELAY = 5.0
SLOW_PROMPT = "SLOW hello from the version matrix: one two three four five six seven eight nine"


@dataclass(frozen=True)
class Version:
    cli: str
    version: str
    pinned: bool

    def binary(self) -> Path:
        if self.pinned:
            return BINARIES[self.cli]
        prefix = AGENTS_DIR / "matrix" / f"{self.cli}-{self.version}"
        return prefix / ("bin" if self.cli == "aider" else "node_modules/.bin") / self.cli


def versions() -> list[Version]:
    found = []
    for line in VERSIONS_FILE.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            found.append(Version(parts[0], parts[1], parts[2:] == ["pinned"]))
    return found


@dataclass
class Outcome:
    """What one (CLI, version, size) produced: captures and skipped scenarios."""

    captures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


class Skip(Exception):
    """A scenario this version cannot reach; the message says why."""


class Run:
    """One CLI session at one size, in its own sandbox, host and fake server."""

    def __init__(self, spec: AgentSpec, version: Version, size: str, out: Outcome) -> None:
        self.spec, self.version, self.size, self.out = spec, version, size, out
        root = Path(tempfile.mkdtemp(prefix=f"at-mx-{spec.name}-", dir="/tmp")).resolve()
        home, work = root / "home", root / "work"
        for folder in (home, work, root / "tmp"):
            folder.mkdir()
        git_init(work)
        log = root / "server.jsonl"
        server, port = start_server(log)
        self.box = Sandbox(root, home, work, server, port, log, spec.name)
        columns, rows = SIZES[size]
        self.driver = HostDriver(spec.runtime, root / "town", columns=columns, rows=rows)
        self._cells: dict[str, list[list[screen_ansi.Cell]]] = {}
        """The style runs of the last screens read, by their text (oldest first)."""

    def start(self, seed: Callable[[Sandbox, dict[str, str]], None] | None = None) -> None:
        argv, env = self.spec.setup(self.box)
        argv[0] = str(self.version.binary())
        if seed is not None:
            seed(self.box, env)
        self.driver.start(argv, env, self.box.work)

    def close(self) -> None:
        self.driver.close()
        self.box.server.shutdown()
        self.box.server.server_close()
        reap_by_home(self.box.home)
        shutil.rmtree(self.box.root, ignore_errors=True)

    # ---- reading the screen ----------------------------------------------------------------

    def screen(self) -> str:
        """The screen's text; its style runs are kept for ``save`` (read in one hop)."""

        def read() -> tuple[str, list[list[screen_ansi.Cell]]]:
            emulator = self.driver.session.emulator
            rows = [screen_ansi.cells(emulator.line_cells(y)) for y in range(emulator.rows)]
            return emulator.text(), rows

        text, rows = self.driver.call(read)
        self._cells[text] = rows
        while len(self._cells) > 16:
            del self._cells[next(iter(self._cells))]
        return text

    def stable(self, quiet: float = 2.0, timeout: float = 30.0) -> tuple[str, bool]:
        """The screen once it has not changed for ``quiet`` s (or at ``timeout``, unstable)."""
        deadline = time.monotonic() + timeout
        last, since = self.screen(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()
            elif now.strip() and time.monotonic() - since >= quiet:
                return now, True
        return last, False

    def wait_screen(self, pred: Callable[[str], bool], timeout: float) -> bool:
        """Wait until the screen (all of it, one line) satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(" ".join(self.screen().split())):
                return True
            time.sleep(0.2)
        return False

    def requests(self) -> list[dict[str, object]]:
        """The server's log so far; a line still being written is left for next time."""
        if not self.box.server_log.exists():
            return []
        found = []
        for line in self.box.server_log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    def wait_request(self, pred: Callable[[dict[str, object]], bool], timeout: float = 30) -> bool:
        """Wait for a logged request matching ``pred`` after the current count."""
        seen = len(self.requests())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(r) for r in self.requests()[seen:]):
                return True
            time.sleep(0.1)
        return False

    def submit(self, text: str) -> None:
        self.driver.send_text(text)
        time.sleep(0.6)
        self.driver.send_key("Enter")

    def press(self, keys: tuple[str, ...] | list[str]) -> None:
        for key in keys:
            self.driver.send_key(key)
            time.sleep(0.3)

    # ---- saving ------------------------------------------------------------------------------

    def sanitise(self, screen: str) -> str:
        for path, tag in ((self.box.work, "<work>"), (self.box.home, "<home>")):
            screen = screen.replace(str(path), tag)
        screen = screen.replace(str(self.box.root), "<root>")
        screen = screen.replace(f"127.0.0.1:{self.box.port}", "127.0.0.1:<port>")
        lines = [line.rstrip() for line in screen.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + "\n"

    def coloured(self, screen: str) -> str | None:
        """``screen`` as its colour sidecar (``screen_ansi``), sanitised as its text is;
        None when its runs were not kept or their text is not exactly the saved text."""
        rows = self._cells.get(screen)
        if rows is None:
            return None
        for path, tag in ((self.box.work, "<work>"), (self.box.home, "<home>")):
            rows = [screen_ansi.replace(row, str(path), tag) for row in rows]
        rows = [screen_ansi.replace(row, str(self.box.root), "<root>") for row in rows]
        port = f"127.0.0.1:{self.box.port}"
        rows = [screen_ansi.replace(row, port, "127.0.0.1:<port>") for row in rows]
        sidecar = screen_ansi.render(rows)
        return sidecar if screen_ansi.strip(sidecar) == self.sanitise(screen) else None

    def save(self, state: str, scenario: str, screen: str, note: str = "") -> None:
        folder = OUT / self.spec.name / self.version.version / self.size
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{state}-{scenario}.txt"
        (folder / name).write_text(self.sanitise(screen), encoding="utf-8")
        entry = {
            "cli": self.spec.name,
            "version": self.version.version,
            "size": self.size,
            "state": state,
            "scenario": scenario,
            "file": str((folder / name).relative_to(OUT)),
            "note": note,
        }
        sidecar = self.coloured(screen)
        if sidecar is not None:
            ansi = folder / f"{state}-{scenario}.ansi"
            ansi.write_text(sidecar, encoding="utf-8")
            entry["ansi"] = str(ansi.relative_to(OUT))
        else:
            print(f"  {self.spec.name} {self.version.version} {self.size}: {name} NO COLOUR")
        self.out.captures.append(entry)
        print(f"  {self.spec.name} {self.version.version} {self.size}: {name} {note}", flush=True)

    def skip(self, scenario: str, reason: str) -> None:
        self.out.skipped.append(
            {
                "cli": self.spec.name,
                "version": self.version.version,
                "size": self.size,
                "scenario": scenario,
                "reason": reason,
            }
        )
        print(f"  {self.spec.name} {self.version.version} {self.size}: skip {scenario}: {reason}")


# --------------------------------------------------------------------------- the main session


def kind_is(*kinds: str) -> Callable[[dict[str, object]], bool]:
    def pred(record: dict[str, object]) -> bool:
        reply = record.get("reply")
        return isinstance(reply, dict) and reply.get("kind") in kinds

    return pred


def status_is(status: int) -> Callable[[dict[str, object]], bool]:
    def pred(record: dict[str, object]) -> bool:
        usage = record.get("usage")
        return isinstance(usage, dict) and usage.get("status") == status

    return pred


def fetched(run: Run) -> bool:
    """The web-fetch tool's GET of ``/page`` reached the fake server."""
    return any(r.get("method") == "GET" and r.get("path") == "/page" for r in run.requests())


def approval(
    run: Run,
    scenario: str,
    prompt: str,
    kinds: tuple[str, ...],
    effect: Path | Callable[[Run], bool],
) -> None:
    """Ask for a tool the CLI should ask about, save the prompt, deny it, save the idle after."""
    seen = len(run.requests())
    run.submit(prompt)
    if not kinds:  # the CLI asks by itself, before any model request (Aider's add-file)
        pass
    elif not run.wait_request(kind_is(*kinds, "no-tool"), 40):
        run.skip(scenario, "the model request never came")
        run.stable()
        return
    if any(kind_is("no-tool")(r) for r in run.requests()[seen:]):
        why = NO_TOOL.get((run.spec.name, scenario), "the CLI offers the model no such tool")
        run.skip(scenario, why)
        run.stable()
        return
    time.sleep(1.0)
    screen, steady = run.stable(quiet=2.0, timeout=25)
    if effect(run) if callable(effect) else effect.exists():
        run.skip(scenario, "the CLI ran the tool without asking")
        run.stable()
        return
    run.save("awaiting_approval", scenario, screen, "" if steady else "screen still changing")
    run.press(run.spec.deny_keys)
    screen, steady = run.stable(quiet=2.0, timeout=25)
    run.save("idle", f"after_deny_{scenario}", screen, "" if steady else "screen still changing")


START_READY: dict[str, Callable[[str], bool]] = {"aider": SPECS["aider"].is_idle}
"""Where a quiet screen is not yet a started CLI: Aider prints a line, then imports for
seconds before its prompt shows (its prompt, `diff>`, is the same in every version)."""


def main_session(run: Run) -> None:
    run.start()
    ready = START_READY.get(run.spec.name)
    if ready is not None:
        run.wait_screen(lambda _: ready(run.screen()), run.spec.start_timeout)
    screen, steady = run.stable(quiet=3.0, timeout=run.spec.start_timeout)
    run.save("idle", "start", screen, "" if steady else "screen still changing")

    run.box.server.first_token_delay = FIRST_TOKEN_DELAY
    run.submit(SLOW_PROMPT)
    if run.wait_request(kind_is("slow"), 90):  # OpenCode installs its provider package first
        time.sleep(2.0)
        run.save("working", "before_first_token", run.screen())
        time.sleep(FIRST_TOKEN_DELAY - 2.0 + 2.5)
        run.save("working", "streaming", run.screen())
        # The answer echoes the prompt after "You said:"; the prompt itself, still on
        # screen, must not count (Claude Code 2.0.76's spinner outlives its answer).
        if run.wait_screen(lambda text: "nine" in text.partition("You said:")[2], 40):
            screen, steady = run.stable(quiet=2.5, timeout=40)
            run.save("idle", "after_answer", screen, "" if steady else "screen still changing")
        else:
            run.skip("after_answer", "the streamed answer never appeared on screen")
            run.press(["Escape"])
            run.stable()
    else:
        run.skip("working", "the prompt never reached the model")

    approval(
        run,
        "shell",
        "RUN: touch approved.txt",
        ("run-tool", "run-fenced"),
        run.box.work / "approved.txt",
    )
    if run.spec.name == "aider":
        approval(run, "add_file", "MENTION: calc.py", (), run.box.work / "never")
    else:
        target = run.box.work / "notes.txt"
        approval(run, "edit", f"WRITE: {target}", ("write-tool",), target)
        url = f"http://127.0.0.1:{run.box.port}/page"
        approval(run, "fetch", f"FETCH: {url}", ("fetch-tool",), fetched)

    for scenario, fail, status in (
        ("auth_401", run.box.server.fail_auth, 401),
        ("rate_limit_429", run.box.server.fail_rate_limit, 429),
    ):
        fail()
        run.submit(f"hello, {scenario}")
        if not run.wait_request(status_is(status), 30):
            run.skip(scenario, "no model request after the prompt")
            continue
        time.sleep(2.0)
        screen, steady = run.stable(quiet=3.0, timeout=25)
        # Still changing after 25 s: a retry countdown (working); else the error as shown.
        run.save(labelled(run, scenario, "unknown" if steady else "working"), scenario, screen)
        run.box.server.fail = None
        if not steady:
            run.press(["Escape"])
            run.stable(quiet=2.0, timeout=20)


LABELS_FILE = HERE / "matrix_labels.json"


def labelled(run: Run, scenario: str, default: str) -> str:
    """The state a person reads on this scenario's screen: ``default``, unless
    ``matrix_labels.json`` (written after looking at the captures) says otherwise for
    ``<cli>/<version>/<size>/<scenario>`` (shell-style patterns)."""
    labels = json.loads(LABELS_FILE.read_text()) if LABELS_FILE.exists() else {}
    key = f"{run.spec.name}/{run.version.version}/{run.size}/{scenario}"
    for pattern, entry in labels.items():
        if fnmatch.fnmatchcase(key, pattern):
            return str(entry["state"])
    return default


# --------------------------------------------------------------------------- first-run dialogs


def _edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def claude_untrusted(box: Sandbox, env: dict[str, str]) -> None:
    _edit_json(box.home / ".claude.json", lambda d: d.pop("projects"))


def claude_key_unapproved(box: Sandbox, env: dict[str, str]) -> None:
    _edit_json(box.home / ".claude.json", lambda d: d.pop("customApiKeyResponses"))


def claude_no_onboarding(box: Sandbox, env: dict[str, str]) -> None:
    _edit_json(box.home / ".claude.json", lambda d: d.pop("hasCompletedOnboarding"))


def codex_untrusted(box: Sandbox, env: dict[str, str]) -> None:
    config = box.home / ".codex" / "config.toml"
    text = config.read_text()
    config.write_text(re.sub(r'\[projects\."[^"]*"\]\ntrust_level = "trusted"\n', "", text))


def codex_login(box: Sandbox, env: dict[str, str]) -> None:
    config = box.home / ".codex" / "config.toml"
    lines = [
        line
        for line in config.read_text().splitlines()
        if not line.startswith(("model_provider", "model ="))
    ]
    config.write_text("\n".join(lines) + "\n")
    tomllib.loads(config.read_text())
    env.pop("FAKE_API_KEY", None)


def gemini_untrusted(box: Sandbox, env: dict[str, str]) -> None:
    (box.home / ".gemini" / "trustedFolders.json").write_text("{}")
    _edit_json(
        box.home / ".gemini" / "settings.json",
        lambda d: d.setdefault("security", {}).setdefault("folderTrust", {"enabled": True}),  # type: ignore[union-attr]
    )


def gemini_no_auth(box: Sandbox, env: dict[str, str]) -> None:
    _edit_json(box.home / ".gemini" / "settings.json", lambda d: d.pop("security"))
    env.pop("GEMINI_API_KEY", None)


DIALOGS: dict[str, list[tuple[str, Callable[[Sandbox, dict[str, str]], None]]]] = {
    "claude": [
        ("trust_dialog", claude_untrusted),
        ("api_key_dialog", claude_key_unapproved),
        ("onboarding_dialog", claude_no_onboarding),
    ],
    "codex": [("trust_dialog", codex_untrusted), ("login_dialog", codex_login)],
    "gemini": [("trust_dialog", gemini_untrusted), ("auth_dialog", gemini_no_auth)],
    "opencode": [],
    "aider": [],
}
NO_DIALOGS = {
    "opencode": "shows no first-run dialog with a config file (no trust or login screen)",
    "aider": "start-up questions only without a git repo or model metadata (not recorded)",
}
NO_TOOL = {
    ("codex", "edit"): "Codex offers a model it does not know (fake-model) no apply_patch tool",
    ("codex", "fetch"): "Codex has no web-fetch tool (its web search runs on the server)",
    ("claude", "fetch"): "this version offers the model no WebFetch tool",
}
UPDATE_SKIP = "update offers need the vendor's release endpoint, unreachable offline"


def dialog_session(
    run: Run, scenario: str, seed: Callable[[Sandbox, dict[str, str]], None]
) -> None:
    run.start(seed)
    screen, _ = run.stable(quiet=3.0, timeout=run.spec.start_timeout)
    run.save(labelled(run, scenario, "unknown"), scenario, screen)


# --------------------------------------------------------------------------- driving it all


def record_size(version: Version, size: str, out: Outcome) -> None:
    spec = SPECS[version.cli]
    sessions: list[tuple[str, Callable[[Run], None]]] = [("main", main_session)]
    for scenario, seed in DIALOGS[version.cli]:
        sessions.append((scenario, lambda run, s=scenario, f=seed: dialog_session(run, s, f)))  # type: ignore[misc]
    for name, body in sessions:
        run = Run(spec, version, size, out)
        try:
            body(run)
        except Exception as error:  # record what failed, keep going with the rest
            run.skip(name, f"session failed: {type(error).__name__}: {str(error)[:200]}")
        finally:
            with contextlib.suppress(Exception):
                run.close()
    if version.cli in NO_DIALOGS:
        _skip_static(out, version, size, "first_run_dialogs", NO_DIALOGS[version.cli])
    _skip_static(out, version, size, "update_offer", UPDATE_SKIP)


def _skip_static(out: Outcome, version: Version, size: str, scenario: str, reason: str) -> None:
    out.skipped.append(
        {
            "cli": version.cli,
            "version": version.version,
            "size": size,
            "scenario": scenario,
            "reason": reason,
        }
    )


def record_version(version: Version) -> Outcome:
    out = Outcome()
    if not version.binary().exists():
        for size in SIZES:
            _skip_static(out, version, size, "all", f"not installed at {version.binary()}")
        return out
    shutil.rmtree(OUT / version.cli / version.version, ignore_errors=True)
    threads = [
        threading.Thread(target=record_size, args=(version, size, out), daemon=True)
        for size in SIZES
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def index_path(cli: str) -> Path:
    return OUT / cli / "index.json"


def write_index(version: Version, out: Outcome) -> None:
    """Replace this version's entries in its CLI's ``index.json``."""
    path = index_path(version.cli)
    index = json.loads(path.read_text()) if path.exists() else {"captures": [], "skipped": []}
    for key in ("captures", "skipped"):
        kept = [e for e in index[key] if e["version"] != version.version]
        kept.extend(asdict(out)[key])
        index[key] = sorted(kept, key=lambda e: (e["version"], e["size"], e["scenario"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")


def relabel() -> int:
    """Apply ``matrix_labels.json`` to the captures on disk (rename, fix the index)."""
    labels = json.loads(LABELS_FILE.read_text())
    changed = 0
    for path in sorted(OUT.glob("*/index.json")):
        changed += _relabel(path, labels)
    return changed


def _relabel(path: Path, labels: dict[str, dict[str, str]]) -> int:
    index = json.loads(path.read_text())
    changed = 0
    for entry in index["captures"]:
        key = f"{entry['cli']}/{entry['version']}/{entry['size']}/{entry['scenario']}"
        state = next(
            (e["state"] for pat, e in labels.items() if fnmatch.fnmatchcase(key, pat)), None
        )
        if state is None or state == entry["state"]:
            continue
        old = OUT / entry["file"]
        entry["state"] = state
        entry["file"] = f"{key.rsplit('/', 1)[0]}/{state}-{entry['scenario']}.txt"
        old.rename(OUT / entry["file"])
        if "ansi" in entry:
            old_ansi = OUT / entry["ansi"]
            entry["ansi"] = entry["file"].removesuffix(".txt") + ".ansi"
            old_ansi.rename(OUT / entry["ansi"])
        changed += 1
        print(f"  {key}: {state}")
    path.write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", action="append", choices=sorted(SPECS), help="only these CLIs")
    parser.add_argument("--versions", nargs="*", help="only these versions")
    parser.add_argument(
        "--relabel", action="store_true", help="only apply matrix_labels.json to the captures"
    )
    args = parser.parse_args(argv)
    if args.relabel:
        print(f"{relabel()} captures relabelled")
        return 0
    chosen = [
        v
        for v in versions()
        if (not args.cli or v.cli in args.cli) and (not args.versions or v.version in args.versions)
    ]
    for version in chosen:
        print(f"== {version.cli} {version.version}", flush=True)
        started = time.monotonic()
        out = record_version(version)
        write_index(version, out)
        print(f"   {len(out.captures)} captures in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
