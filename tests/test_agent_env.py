"""Agents get an allow-listed environment, never the operator's handles and tokens (F1, F12).

The launch is built from the runtime's table; then a real daemon, started with a
multiplexer, an SSH agent and a token in its environment, starts a real agent,
whose /proc environ and a `tmux ls` run inside it show what reached it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, wait_for

from tundra_tui.config import load_config
from tundra_tui.session.launch import agent_config
from tundra_tui.town import Town, init_town

OPERATOR_ENV = {
    "TMUX": "/tmp/tmux-0/default,4242,0",
    "TMUX_PANE": "%7",
    "STY": "4242.pts-3.operator",
    "SSH_AUTH_SOCK": "/tmp/ssh-operator/agent.4242",
    "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22",
    "GITHUB_TOKEN": "ghp_" + "A" * 36,
    "AWS_SECRET_ACCESS_KEY": "operator-aws-secret",
    "ANTHROPIC_API_KEY": "sk-ant-operator",
    "OPENAI_API_KEY": "sk-operator",
    "LANG": "C.UTF-8",
    "LC_TIME": "C",
    "https_proxy": "http://proxy.invalid:3128",
}
NEVER = ("TMUX", "TMUX_PANE", "STY", "SSH_AUTH_SOCK", "SSH_CONNECTION", "GITHUB_TOKEN")


def _agent(tmp_path: Path, name: str, table: str) -> dict[str, str]:
    town, _ = init_town(tmp_path / name)
    town.config_path.write_text(town.config_path.read_text() + table)
    spec = load_config(town).agents()[name]
    base = {**OPERATOR_ENV, "PATH": "/usr/bin", "HOME": "/home/op", "TERM": "screen"}
    return agent_config(spec, town, base_env=base).launch.env


def test_each_runtime_takes_only_its_own_keys_and_what_config_sets(tmp_path: Path) -> None:
    claude = _agent(tmp_path, "c1", '\n[agents.c1]\nrole = "crew"\nruntime = "claude"\n')
    assert claude["ANTHROPIC_API_KEY"] == "sk-ant-operator"
    assert "OPENAI_API_KEY" not in claude and "AWS_SECRET_ACCESS_KEY" not in claude
    assert (claude["PATH"], claude["HOME"], claude["LANG"], claude["LC_TIME"]) == (
        f"{os.path.dirname(sys.executable)}:/usr/bin",  # our `at` first
        "/home/op",
        "C.UTF-8",
        "C",
    )
    assert claude["https_proxy"] == "http://proxy.invalid:3128"
    assert "TERM" not in claude, "the PTY host sets its own TERM"
    codex = _agent(tmp_path, "x1", '\n[agents.x1]\nrole = "crew"\nruntime = "codex"\n')
    assert codex["OPENAI_API_KEY"] == "sk-operator" and "ANTHROPIC_API_KEY" not in codex
    aider = _agent(
        tmp_path, "a1", '\n[agents.a1]\nrole = "crew"\nruntime = "aider"\nmodel = "gpt-4o"\n'
    )
    assert aider["OPENAI_API_KEY"] == "sk-operator" and "ANTHROPIC_API_KEY" not in aider
    custom = _agent(
        tmp_path,
        "u1",
        '\n[agents.u1]\nrole = "crew"\nruntime = "custom"\ncommand = "sh"\n'
        '[agents.u1.env]\nGITHUB_TOKEN = "configured"\nLANG = "de_DE.UTF-8"\n'
        'TUNDRA_AGENT = "someone-else"\n',
    )
    for env in (claude, codex, aider, custom):
        assert not {"TMUX", "TMUX_PANE", "STY", "SSH_AUTH_SOCK", "SSH_CONNECTION"} & set(env)
    assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"} & set(custom)
    # What the operator configured always passes and wins; the agent's identity is ours.
    assert (custom["GITHUB_TOKEN"], custom["LANG"]) == ("configured", "de_DE.UTF-8")
    assert custom["TUNDRA_AGENT"] == "u1"


@pytest.fixture
def town() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    try:
        yield root
    finally:
        subprocess.run([*AT, "--town", str(root), "daemon", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_daemon_started_inside_tmux_passes_none_of_it_on(town: Path) -> None:
    # The "operator's" tmux server, on the default socket of a directory of its own.
    operator_tmp = town / "operator-tmux"
    operator_tmp.mkdir(mode=0o700)
    tmux_env = {**os.environ, "TMUX_TMPDIR": str(operator_tmp)}
    subprocess.run(
        ["tmux", "-f", "/dev/null", "new-session", "-d", "-s", "operator", "sleep 600"],
        env=tmux_env,
        check=True,
    )
    socket = operator_tmp / f"tmux-{os.getuid()}" / "default"
    try:
        seen = town / "tmux-ls.txt"
        script = f"tmux ls > {seen}.tmp 2>&1; echo rc=$? >> {seen}.tmp; mv {seen}.tmp {seen}"
        subprocess.run([*AT, "init", str(town)], capture_output=True, check=True)
        with (town / "tundra.toml").open("a") as config:
            config.write(
                '\n[agents.envy]\nrole = "crew"\nruntime = "custom"\ncommand = "sh"\n'
                f"args = [{json.dumps('-c')}, {json.dumps(script + '; exec sleep 600')}]\n"
                '[agents.envy.env]\nCONFIGURED = "from-config"\n'
            )
        daemon_env = {
            **os.environ,
            **OPERATOR_ENV,
            "TMUX": f"{socket},4242,0",
            "TMUX_TMPDIR": str(operator_tmp),
        }
        done = subprocess.run(
            [*AT, "--town", str(town), "agent", "start", "envy"],
            env=daemon_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        wait_for(lambda: seen.exists())
        rows = json.loads(
            subprocess.run(
                [*AT, "--town", str(town), "agent", "list", "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        pid = next(row for row in rows if row["name"] == "envy")["pid"]
        environ = dict(
            entry.split("=", 1)
            for entry in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in entry
        )
        assert not set(NEVER) & set(environ), sorted(set(NEVER) & set(environ))
        assert "AWS_SECRET_ACCESS_KEY" not in environ and "ANTHROPIC_API_KEY" not in environ
        assert environ["CONFIGURED"] == "from-config"
        assert environ["TERM"] == "xterm-256color" and environ["LANG"] == "C.UTF-8"
        private = Path(environ["TMUX_TMPDIR"])
        assert environ["SCREENDIR"] == str(private)
        assert private.is_relative_to(Town(town).state_dir / "agents" / "envy")
        assert private.stat().st_mode & 0o777 == 0o700
        # A plain `tmux` inside the agent finds no server: not the operator's.
        listed = seen.read_text()
        assert "operator" not in listed and "rc=1" in listed, listed
    finally:
        subprocess.run(["tmux", "kill-server"], env=tmux_env, capture_output=True)
