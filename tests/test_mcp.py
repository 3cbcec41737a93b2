"""The MCP reader: every runtime's file format, masking, binaries, and broken or hostile files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tundra_tui.config import short_path
from tundra_tui.mcp import (
    MASK,
    FileCache,
    McpServer,
    command_line,
    masked_env,
    masked_headers,
    problem_line,
    read_servers,
    source_label,
)
from tundra_tui.mcp.files import strip_jsonc

SECRET = "sk-live-DO-NOT-SHOW-1234"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "town"
    path.mkdir()
    return path


@pytest.fixture
def home(private_home: Path) -> Path:
    return private_home


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory holding one executable, `present-server`."""
    path = tmp_path / "bin"
    path.mkdir()
    tool = path / "present-server"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    return path


def read(
    root: Path, home: Path, bin_dir: Path | None = None, **env: str
) -> tuple[list[McpServer], list[str]]:
    environ = {"PATH": str(bin_dir) if bin_dir else "/nonexistent", **env}
    report = read_servers(root, home=home, environ=environ)
    return report.servers, [problem_line(problem, root) for problem in report.problems]


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def by_name(servers: list[McpServer]) -> dict[tuple[str, str, str], McpServer]:
    return {(s.runtime, s.scope, s.name): s for s in servers}


def test_claude_project_user_and_local_scopes(root: Path, home: Path, bin_dir: Path) -> None:
    write_json(
        root / ".mcp.json",
        {"mcpServers": {"files": {"command": "present-server", "args": ["--root", "."]}}},
    )
    write_json(
        home / ".claude.json",
        {
            "mcpServers": {"web": {"type": "http", "url": "https://mcp.example.com/mcp"}},
            "projects": {
                str(root): {"mcpServers": {"db": {"command": "psql-mcp", "env": {"PGPASS": "x"}}}},
                str(root / ".tundra/worktrees/p1"): {"mcpServers": {"wt": {"command": "w"}}},
                "/elsewhere": {"mcpServers": {"other": {"command": "nope"}}},
            },
        },
    )
    servers, problems = read(root, home, bin_dir)
    assert problems == []
    found = by_name(servers)
    assert set(found) == {
        ("claude", "local", "db"),
        ("claude", "local:.tundra/worktrees/p1", "wt"),
        ("claude", "project", "files"),
        ("claude", "user", "web"),
    }
    files = found["claude", "project", "files"]
    assert files.args == ("--root", ".")
    assert files.found is True
    assert files.resolved == str(bin_dir / "present-server")
    assert files.source == root / ".mcp.json"
    web = found["claude", "user", "web"]
    assert (web.found, web.transport, web.url) == (None, "http", "https://mcp.example.com/mcp")
    assert found["claude", "local", "db"].found is False
    # Local wins over project over user: the order shows the winning scope first.
    assert [s.scope for s in servers] == ["local", "local:.tundra/worktrees/p1", "project", "user"]


def test_codex_user_and_project_toml(root: Path, home: Path, bin_dir: Path) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "o3"\n\n'
        "[mcp_servers.docs]\n"
        'command = "present-server"\n'
        'args = ["-y", "docs"]\n'
        f'env = {{ "API_KEY" = "{SECRET}" }}\n\n'
        "[mcp_servers.remote]\n"
        'url = "https://example.com/mcp"\n'
        "enabled = false\n"
    )
    (root / ".codex").mkdir()
    (root / ".codex" / "config.toml").write_text('[mcp_servers.docs]\ncommand = "other"\n')
    servers, problems = read(root, home, bin_dir)
    assert problems == []
    found = by_name(servers)
    docs = found["codex", "user", "docs"]
    assert docs.env == {"API_KEY": SECRET}
    assert docs.args == ("-y", "docs")
    assert docs.shadowed_by == "project"
    assert found["codex", "project", "docs"].shadowed_by == ""
    remote = found["codex", "user", "remote"]
    assert remote.enabled is False
    assert remote.found is None


def test_codex_home_moves_the_user_file(root: Path, home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "codex-home"
    elsewhere.mkdir()
    (elsewhere / "config.toml").write_text('[mcp_servers.a]\ncommand = "a"\n')
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text('[mcp_servers.b]\ncommand = "b"\n')
    servers, _ = read(root, home, CODEX_HOME=str(elsewhere))
    assert [(s.name, s.source) for s in servers] == [("a", elsewhere / "config.toml")]


def test_gemini_settings_with_comments(root: Path, home: Path) -> None:
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir()
    path.write_text(
        "{\n"
        '  // the theme, "Dracula" // not a comment inside a string\n'
        '  "theme": "a // b",\n'
        '  "mcpServers": {\n'
        '    /* a local one */ "py": {"command": "python", "args": ["s.py",],},\n'
        '    "gh": {"httpUrl": "https://api.example.com/mcp/",\n'
        '           "headers": {"Authorization": "t"}},\n'
        '    "sse": {"url": "https://sse.example.com"}\n'
        "  },\n"
        "}\n"
    )
    write_json(root / ".gemini" / "settings.json", {"mcpServers": {"py": {"command": "py3"}}})
    servers, problems = read(root, home)
    assert problems == []
    found = by_name(servers)
    assert found["gemini", "user", "py"].args == ("s.py",)
    assert found["gemini", "user", "py"].shadowed_by == "project"
    assert found["gemini", "user", "gh"].transport == "http"
    assert found["gemini", "user", "sse"].transport == "sse"
    assert masked_headers(found["gemini", "user", "gh"]) == f"Authorization: {MASK}"


def test_opencode_local_and_remote(root: Path, home: Path, tmp_path: Path) -> None:
    (root / "opencode.jsonc").write_text(
        "{\n"
        '  "$schema": "https://opencode.ai/config.json",\n'
        '  "mcp": {\n'
        '    "everything": {"type": "local", "command": ["npx", "-y", "srv"],\n'
        '                   "environment": {"TOKEN": "x"}, "enabled": true},\n'
        '    "jira": {"type": "remote", "url": "https://jira.example.com/mcp"}, // remote\n'
        "  }\n"
        "}\n"
    )
    xdg = tmp_path / "xdg"
    write_json(
        xdg / "opencode" / "opencode.json", {"mcp": {"g": {"type": "local", "command": ["g"]}}}
    )
    servers, problems = read(root, home, XDG_CONFIG_HOME=str(xdg))
    assert problems == []
    found = by_name(servers)
    everything = found["opencode", "project", "everything"]
    assert (everything.command, everything.args) == ("npx", ("-y", "srv"))
    assert masked_env(everything) == f"TOKEN={MASK}"
    assert found["opencode", "project", "jira"].url == "https://jira.example.com/mcp"
    assert found["opencode", "global", "g"].source == xdg / "opencode" / "opencode.json"


def test_env_and_secrets_are_masked_everywhere(root: Path, home: Path) -> None:
    write_json(
        root / ".mcp.json",
        {
            "mcpServers": {
                "s": {
                    "command": "docker",
                    "args": [
                        "run",
                        "-e",
                        f"GITHUB_TOKEN={SECRET}",
                        "--api-key",
                        SECRET,
                        f"--password={SECRET}",
                        "--verbose",
                        f"postgres://app:{SECRET}@db/main",
                        "image",
                    ],
                    "env": {"Z_KEY": SECRET, "A_KEY": SECRET},
                },
                "u": {
                    "type": "sse",
                    "url": f"https://me:{SECRET}@h.example:8443/p?key={SECRET}&v=1",
                },
            }
        },
    )
    servers, _ = read(root, home)
    s, u = servers[0], servers[1]
    shown = [masked_env(s), command_line(s), command_line(u), repr(s), repr(u)]
    assert masked_env(s) == f"A_KEY={MASK} Z_KEY={MASK}"
    assert command_line(s) == (
        f"docker run -e GITHUB_TOKEN={MASK} --api-key {MASK} --password={MASK} --verbose "
        f"postgres://app:{MASK}@db/main image"
    )
    assert command_line(s, with_args=False) == "docker"
    assert command_line(u) == f"https://me:{MASK}@h.example:8443/p?key={MASK}&v={MASK}"
    assert all(SECRET not in text for text in shown)


def test_missing_binary_and_relative_paths(root: Path, home: Path, bin_dir: Path) -> None:
    script = root / "tools" / "serve.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (root / "tools" / "plain.txt").write_text("not executable")
    write_json(
        root / ".mcp.json",
        {
            "mcpServers": {
                "rel": {"command": "./tools/serve.sh"},
                "notexec": {"command": "tools/plain.txt"},
                "gone": {"command": "no-such-binary-anywhere"},
                "abs": {"command": str(bin_dir / "present-server")},
                "var": {"command": "${TOOLS:-./tools}/serve.sh"},
            }
        },
    )
    servers, problems = read(root, home, bin_dir)
    assert problems == []
    found = {s.name: (s.found, s.resolved) for s in servers}
    assert found["rel"] == (True, str(root / "tools" / "serve.sh"))
    assert found["notexec"] == (False, "")
    assert found["gone"] == (False, "")
    assert found["abs"][0] is True
    assert found["var"][0] is True


def test_malformed_json_is_one_problem_line(root: Path, home: Path) -> None:
    (root / ".mcp.json").write_text('{"mcpServers": {"a": {"command": "x",}}')
    (home / ".claude.json").write_text('{"mcpServers": {"ok": {"command": "y"}}}')
    servers, problems = read(root, home)
    assert [s.name for s in servers] == ["ok"]
    assert len(problems) == 1
    assert problems[0].startswith(".mcp.json: line 1 col ")
    assert "invalid JSON" in problems[0]
    assert "\n" not in problems[0]


def test_malformed_toml_is_one_problem_line(root: Path, home: Path) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text("[mcp_servers.a\ncommand = 1\n")
    servers, problems = read(root, home)
    assert servers == []
    assert len(problems) == 1
    assert problems[0].startswith("~/.codex/config.toml: invalid TOML:")


def test_bad_entries_are_problems_and_the_rest_still_load(root: Path, home: Path) -> None:
    write_json(
        root / ".mcp.json",
        {
            "mcpServers": {
                "str": "not an object",
                "args": {"command": "x", "args": "--flag"},
                "empty": {},
                "good": {"command": "x"},
            }
        },
    )
    write_json(
        home / ".claude.json",
        {"mcpServers": ["a list"], "projects": {str(root): {"mcpServers": {"mine": {"url": "u"}}}}},
    )
    write_json(root / "opencode.json", {"mcp": {"odd": {"type": "weird"}}})
    servers, problems = read(root, home)
    assert [(s.scope, s.name) for s in servers] == [("local", "mine"), ("project", "good")]
    assert sorted(problems) == sorted(
        [
            ".mcp.json: claude server 'str': expected an object, got a string",
            ".mcp.json: claude server 'args': args: expected a list of strings, got a string",
            ".mcp.json: claude server 'empty': no command and no url",
            "~/.claude.json: mcpServers: expected an object, got a list",
            "opencode.json: opencode server 'odd': type must be local or remote, got 'weird'",
        ]
    )


def test_unreadable_files_are_problems(root: Path, home: Path) -> None:
    (root / ".mcp.json").mkdir()
    (home / ".claude.json").write_bytes(b'{"mcpServers": {"\xff": 1}}')
    _, problems = read(root, home)
    assert problems[0].startswith(".mcp.json: cannot read: ")
    assert problems[1] == "~/.claude.json: not valid UTF-8"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_a_problem(root: Path, home: Path) -> None:
    path = root / ".mcp.json"
    path.write_text("{}")
    path.chmod(0)
    try:
        _, problems = read(root, home)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert problems == [".mcp.json: cannot read: Permission denied"]


def test_hostile_names_are_shown_visibly(root: Path, home: Path) -> None:
    hostile = "evil\x1b[2J\x07\u202ename\nnext"
    write_json(
        root / ".mcp.json",
        {"mcpServers": {hostile: {"command": "run\x1b]0;title\x07", "env": {hostile: "v"}}}},
    )
    write_json(home / ".claude.json", {"mcpServers": {hostile: 5}})
    servers, problems = read(root, home)
    [server] = servers
    assert server.name == hostile  # kept as written; only what is shown is changed
    for text in (command_line(server), masked_env(server), *problems):
        assert "\x1b" not in text and "\x07" not in text and "\n" not in text
        assert "\u202e" not in text
    assert "⟨U+202E⟩" in masked_env(server)


def test_missing_files_are_not_problems(root: Path, home: Path) -> None:
    assert read(root, home) == ([], [])


def test_files_are_only_read(root: Path, home: Path) -> None:
    write_json(root / ".mcp.json", {"mcpServers": {"a": {"command": "x"}}})
    before = (root / ".mcp.json").stat().st_mtime_ns
    read(root, home)
    assert (root / ".mcp.json").stat().st_mtime_ns == before
    assert sorted(p.name for p in home.iterdir()) == []


def test_source_labels_are_relative(root: Path, home: Path) -> None:
    write_json(home / ".claude.json", {"mcpServers": {"a": {"command": "x"}}})
    [server] = read_servers(root, home=home, environ={}).servers
    assert source_label(server, root) == "~/.claude.json"
    assert short_path(root / "tundra.toml", root) == "tundra.toml"
    assert short_path(Path("/etc/x")) == "/etc/x"


def test_a_cache_skips_unchanged_files_but_not_binaries(
    root: Path, home: Path, bin_dir: Path
) -> None:
    write_json(root / ".mcp.json", {"mcpServers": {"a": {"command": "late-server"}}})
    cache: FileCache = {}
    environ = {"PATH": str(bin_dir)}
    [first] = read_servers(root, home=home, environ=environ, cache=cache).servers
    assert first.found is False
    assert list(cache) == [root / ".mcp.json"]
    # Same file, seen as unchanged: its cached data is used (poisoned here to prove it).
    signature, data, _ = cache[root / ".mcp.json"]
    assert data is not None
    cache[root / ".mcp.json"] = (signature, {"mcpServers": {"b": {"command": "late-server"}}}, "")
    tool = bin_dir / "late-server"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    [second] = read_servers(root, home=home, environ=environ, cache=cache).servers
    assert (second.name, second.found) == ("b", True)
    # A changed file is read again.
    write_json(root / ".mcp.json", {"mcpServers": {"c": {"command": "x", "args": ["longer"]}}})
    [third] = read_servers(root, home=home, environ=environ, cache=cache).servers
    assert third.name == "c"


def test_strip_jsonc_leaves_strings_alone() -> None:
    text = '{"a": "x\\"// not a comment /* nor this */", // gone\n "b": [1, 2, /* c */],}'
    assert json.loads(strip_jsonc(text)) == {"a": 'x"// not a comment /* nor this */', "b": [1, 2]}
    assert strip_jsonc("/* one\ntwo */{}") == "\n{}"


def test_deeply_nested_files_are_problems(root: Path, home: Path) -> None:
    (root / ".mcp.json").write_text("[" * 100_000)
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text("a = " + "[" * 100_000)
    _, problems = read(root, home)
    assert len(problems) == 2
    assert all("invalid" in problem for problem in problems)
