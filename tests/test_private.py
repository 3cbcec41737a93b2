"""Private by construction (F11), secrets never shown by `at config` (F12), damaged pages
refused (F13): through the real `at`, real files and real SQLite.

CI runs as root, which reads and writes through any mode: these tests check the modes
and owners we set, and make a foreign-owned file with os.chown where root can.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.at_cli import AT
from tundra_tui.cli import _run, settings
from tundra_tui.cli.context import Context
from tundra_tui.config import command_trust_problem, load_config
from tundra_tui.domain.errors import NotFound
from tundra_tui.store.db import DamagedDatabase, open_database
from tundra_tui.town import Town, ensure_state_dir, init_town, write_text_atomic

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
OTHER_UID = 65534
"""nobody: a user who is neither us nor root."""

GITHUB = "ghp_" + "Q" * 36
AWS = "AKIA" + "Z" * 16
PLAIN = "plain-secret-value-9"
"""No well-known shape: only its name (or its flag's) says it is a secret."""


def run(
    town: Path, *argv: str, umask: int = 0o022, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `at`, in a child with its own umask (and HOME, if given)."""
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [*AT, "--town", str(town), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        umask=umask,
        env=env,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def tree_modes(root: Path) -> dict[str, int]:
    """Every path under `root` (itself included) with its permission bits."""
    found = {".": mode(root)}
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(directory, name)
            found[str(path.relative_to(root))] = mode(path)
    return found


@pytest.fixture
def town(tmp_path: Path) -> Town:
    town, _ = init_town(tmp_path / "town")
    return town


# ---- modes whatever the umask (F11) ---------------------------------------------------


def test_init_under_umask_000_makes_state_private_and_team_files_0644(
    tmp_path: Path, private_home: Path
) -> None:
    root = tmp_path / "projects" / "town"
    done = run(root, "init", str(root), umask=0)
    assert done.returncode == 0, done.stderr
    for argv in (
        ("bead", "add", "first"),
        ("config", "set", "--layer", "local", "general.name", "mine"),
        ("config", "set", "--layer", "global", "ui.theme", "nord"),
    ):
        done = run(root, *argv, umask=0, home=private_home)
        assert done.returncode == 0, done.stderr

    assert mode(root) == mode(root.parent) == 0o755
    assert mode(root / "tundra.toml") == 0o644
    state = tree_modes(root / ".tundra")
    assert {"town.db", "local.toml", "logs", "agents"} <= set(state)
    for name, bits in state.items():
        expected = 0o700 if (root / ".tundra" / name).is_dir() else 0o600
        assert bits == expected, f".tundra/{name} is {bits:04o}"
    assert mode(private_home / ".auto-tundra") == 0o700
    assert mode(private_home / ".auto-tundra" / "config.toml") == 0o644


async def test_the_database_is_0600_even_under_a_umask_that_would_lock_us_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "town.db"
    old = os.umask(0o277)  # os.open alone would make it 0400, and SQLite read-only
    try:
        db = await open_database(path)
        try:
            async with db.write() as conn:
                await conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
            files = [path, tmp_path / "town.db-wal", tmp_path / "town.db-shm"]
            assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
        finally:
            await db.close()
    finally:
        os.umask(old)


async def test_a_loose_database_left_from_before_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    await (await open_database(path)).close()
    with sqlite3.connect(path) as conn:  # leaves a -wal and -shm behind while open
        conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        for file in (path, tmp_path / "town.db-wal", tmp_path / "town.db-shm"):
            file.chmod(0o666)
        db = await open_database(path)
        try:
            for file in (path, tmp_path / "town.db-wal", tmp_path / "town.db-shm"):
                assert mode(file) == 0o600, file.name
        finally:
            await db.close()


def test_a_team_file_is_written_0644_at_most(tmp_path: Path) -> None:
    target = tmp_path / "tundra.toml"
    after = {}
    for before in (0o666, 0o600, 0o640):
        target.write_text("old")
        target.chmod(before)
        write_text_atomic(target, "new")
        after[before] = (target.read_text(), mode(target))
    assert after == {0o666: ("new", 0o644), 0o600: ("new", 0o600), 0o640: ("new", 0o640)}


@pytest.mark.parametrize(
    ("umask", "private", "expected"), [(0, False, 0o644), (0o277, True, 0o600)]
)
def test_a_new_file_ignores_a_loosening_or_crippling_umask(
    tmp_path: Path, umask: int, private: bool, expected: int
) -> None:
    target = tmp_path / "new.toml"
    old = os.umask(umask)
    try:
        write_text_atomic(target, "x", **({"mode": 0o600} if private else {}))
    finally:
        os.umask(old)
    assert mode(target) == expected


def test_an_open_state_dir_is_tightened_and_said_once(town: Town) -> None:
    town.state_dir.chmod(0o777)
    (town.state_dir / "logs").chmod(0o755)

    first = run(town.root, "bead", "list")
    second = run(town.root, "bead", "list")

    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        f"at: warning: {town.state_dir} was open to other users (mode 0777); tightened it to 0700",
        f"at: warning: {town.state_dir / 'logs'} was open to other users (mode 0755); "
        "tightened it to 0700",
    ]
    assert second.stderr == ""
    assert mode(town.state_dir) == mode(town.state_dir / "logs") == 0o700


def test_tightening_warns_through_the_callers_channel(town: Town) -> None:
    town.state_dir.chmod(0o750)
    said: list[str] = []
    ensure_state_dir(town, warn=said.append)
    ensure_state_dir(town, warn=said.append)
    assert said == [f"{town.state_dir} was open to other users (mode 0750); tightened it to 0700"]


@as_root
def test_a_state_dir_owned_by_another_user_is_refused(town: Town) -> None:
    os.chown(town.state_dir, OTHER_UID, OTHER_UID)
    before = tree_modes(town.state_dir)

    done = run(town.root, "bead", "add", "x")

    assert done.returncode == 2
    assert done.stderr == (
        f"at: refusing to use {town.state_dir}: it belongs to another user (uid {OTHER_UID}), "
        "who could read the town's state or answer in its place; remove it or run as its owner\n"
    )
    assert town.state_dir.stat().st_uid == OTHER_UID
    assert tree_modes(town.state_dir) == before


# ---- commands only from files only we can change (F11) ---------------------------------


def write_team(town: Town, text: str = "") -> None:
    town.config_path.write_text(
        '[agents.mayor]\nrole = "mayor"\nruntime = "claude"\n'
        '[agents.deacon]\nrole = "deacon"\nruntime = "codex"\n' + text
    )


@pytest.mark.parametrize(
    ("bits", "who"), [(0o666, "group and others"), (0o664, "group"), (0o646, "others")]
)
def test_an_agent_from_a_writable_tundra_toml_is_refused(town: Town, bits: int, who: str) -> None:
    write_team(town, 'command = "claude"\n')
    town.config_path.chmod(bits)
    problem = command_trust_problem(load_config(town), "mayor")
    assert problem == (
        f"refusing to start mayor: {town.config_path} sets what it runs and is writable by "
        f"{who} (mode {bits:04o}); run `chmod go-w {town.config_path}`"
    )


def test_a_private_or_read_only_team_file_is_trusted(town: Town) -> None:
    write_team(town)
    for bits in (0o644, 0o600, 0o444):
        town.config_path.chmod(bits)
        assert command_trust_problem(load_config(town), "mayor") is None


def test_a_runtime_command_from_a_writable_global_file_refuses_only_its_agents(
    town: Town, private_home: Path
) -> None:
    write_team(town)
    town.config_path.chmod(0o644)
    global_file = private_home / ".auto-tundra" / "config.toml"
    global_file.parent.mkdir()
    global_file.write_text('[runtimes.claude]\ncommand = "/tmp/evil"\n')
    global_file.chmod(0o666)
    config = load_config(town)

    assert command_trust_problem(config, "mayor") == (
        f"refusing to start mayor: {global_file} sets what it runs and is writable by group "
        f"and others (mode 0666); run `chmod go-w {global_file}`"
    )
    assert command_trust_problem(config, "deacon") is None  # codex: nothing from that file


def test_a_writable_file_that_says_nothing_about_the_agent_is_no_reason(
    town: Town, private_home: Path
) -> None:
    write_team(town)
    global_file = private_home / ".auto-tundra" / "config.toml"
    global_file.parent.mkdir()
    global_file.write_text('[ui]\ntheme = "nord"\n')
    global_file.chmod(0o666)
    assert command_trust_problem(load_config(town), "mayor") is None


def test_env_in_a_writable_local_file_is_refused(town: Town) -> None:
    write_team(town)
    town.local_config_path.write_text('[agents.mayor.env]\nLD_PRELOAD = "/tmp/evil.so"\n')
    town.local_config_path.chmod(0o622)
    problem = command_trust_problem(load_config(town), "mayor")
    assert problem is not None
    assert f"{town.local_config_path} sets what it runs and is writable by group and others" in (
        problem
    )


@as_root
def test_a_team_file_owned_by_another_user_is_refused(town: Town) -> None:
    write_team(town)
    town.config_path.chmod(0o644)
    os.chown(town.config_path, OTHER_UID, OTHER_UID)
    problem = command_trust_problem(load_config(town), "mayor")
    assert problem == (
        f"refusing to start mayor: {town.config_path} sets what it runs and belongs to another "
        f"user (uid {OTHER_UID})"
    )


def test_an_unknown_agent_is_not_found(town: Town) -> None:
    write_team(town)
    with pytest.raises(NotFound, match="no agent named 'ghost'"):
        command_trust_problem(load_config(town), "ghost")


# ---- `at config` never prints a secret unasked (F12) ----------------------------------


@pytest.fixture
def secret_town(town: Town) -> Town:
    write_team(
        town,
        f'args = ["--token", "{PLAIN}", "{GITHUB}", "--api-key={PLAIN}"]\n'
        f'env = {{ ANTHROPIC_API_KEY = "{PLAIN}", HTTP_PROXY = "http://u:{PLAIN}@proxy" }}\n'
        f'[runtimes.codex]\nenv = {{ AWS_ACCESS_KEY_ID = "{AWS}" }}\n',
    )
    return town


@pytest.mark.parametrize(
    "argv",
    [
        ("config", "show"),
        ("config", "show", "--layers"),
        ("config", "show", "--json"),
        ("config", "get", "agents.deacon"),
        ("config", "get", "agents.deacon.env"),
        ("config", "get", "agents.deacon.args"),
        ("config", "get", "runtimes.codex.env", "--json"),
    ],
)
def test_config_output_masks_secrets(secret_town: Town, argv: tuple[str, ...]) -> None:
    done = run(secret_town.root, *argv)
    assert done.returncode == 0, done.stderr
    for secret in (PLAIN, GITHUB, AWS):
        assert secret not in done.stdout
    assert "••••" in done.stdout.replace("\\u2022", "•")  # JSON spells it escaped


def test_config_get_masks_one_for_one(secret_town: Town) -> None:
    args = run(secret_town.root, "config", "get", "agents.deacon.args", "--json")
    env = run(secret_town.root, "config", "get", "agents.deacon.env")
    assert json.loads(args.stdout)["value"] == [
        "--token",
        "••••",
        "[REDACTED:github]",
        "--api-key=••••",
    ]
    assert json.loads(env.stdout) == {"ANTHROPIC_API_KEY": "••••", "HTTP_PROXY": "••••"}


def config_command(town: Town, *argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `at config ARGV` through the parser `settings.add_parser` builds and its handler.

    The real `at` takes `--reveal` once cli/parser.py registers the config commands
    through `settings.add_parser`; until then this drives the same parser and handler.
    """
    parser = argparse.ArgumentParser(prog="at")
    settings.add_parser(parser.add_subparsers(), lambda sub: None)
    args = parser.parse_args(["config", *argv])
    args.town = str(town.root)
    assert asyncio.run(_run(Context(args))) == 0
    return capsys.readouterr().out


def test_reveal_shows_the_values(secret_town: Town, capsys: pytest.CaptureFixture[str]) -> None:
    env = config_command(secret_town, "get", "agents.deacon.env", "--reveal", capsys=capsys)
    assert json.loads(env) == {"ANTHROPIC_API_KEY": PLAIN, "HTTP_PROXY": f"http://u:{PLAIN}@proxy"}
    shown = config_command(secret_town, "show", "--reveal", capsys=capsys)
    assert GITHUB in shown and AWS in shown
    masked = config_command(secret_town, "show", capsys=capsys)
    assert GITHUB not in masked and AWS not in masked and PLAIN not in masked


def test_errors_about_a_bad_value_never_quote_a_secret(town: Town) -> None:
    write_team(town, f'env = {{ TOKEN = "{PLAIN}", RETRIES = 5 }}\n')
    bad_table = run(town.root, "config", "show")
    bad_number = run(town.root, "config", "set", "general.max_agents", GITHUB)
    assert (bad_table.returncode, bad_number.returncode) == (2, 2)
    assert "got {'TOKEN': '••••', 'RETRIES': 5}" in bad_table.stderr
    assert "got '[REDACTED:github]'" in bad_number.stderr
    assert PLAIN not in bad_table.stderr and GITHUB not in bad_number.stderr


# ---- a damaged database is refused for writes (F13) -----------------------------------


def damage_a_middle_page(path: Path) -> None:
    """Overwrite one page in the middle of the beads table, as a bad disk or a stray write
    would. A page of the beads, not of the file: the schema's own pages (it grows with every
    version) would leave nothing to read."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            page
            for (page,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'beads' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    assert len(leaves) > 20, "too few pages to damage one in the middle"
    with path.open("r+b") as file:
        file.seek(page_size * (leaves[len(leaves) // 2] - 1))
        file.write(b"\xff" * page_size)


async def fill(path: Path, beads: int = 300) -> None:
    """A real town database with enough beads to span many pages, checkpointed into the file."""
    db = await open_database(path)
    try:
        async with db.write() as conn:
            await conn.executemany(
                "INSERT INTO beads (title, description, status, lane, priority, created_at, "
                "updated_at) VALUES (?, ?, 'backlog', 'standard', 2, ?, ?)",
                [(f"bead {n}", "x" * 400, db.now(), db.now()) for n in range(beads)],
            )
    finally:
        await db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def damaged(town: Town) -> Iterator[Town]:
    asyncio.run(fill(town.db_path))
    damage_a_middle_page(town.db_path)
    yield town


def test_bead_add_on_damaged_pages_exits_2_and_writes_nothing(damaged: Town) -> None:
    before = digest(damaged.db_path)

    done = run(damaged.root, "bead", "add", "never stored")

    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"at: {damaged.db_path} is damaged (")
    assert lines[0].endswith(
        f"nothing was written to it. Copy it somewhere safe, then rebuild it: "
        f"sqlite3 {damaged.db_path} .recover | sqlite3 recovered.db"
    )
    assert digest(damaged.db_path) == before
    assert not Path(f"{damaged.db_path}-wal").exists()


def test_the_daemon_does_not_start_on_damaged_pages(damaged: Town) -> None:
    done = run(damaged.root, "daemon", "run")
    assert done.returncode == 2
    assert f"{damaged.db_path} is damaged" in done.stderr
    assert not damaged.socket_path.exists()


async def test_quick_check_runs_again_only_when_the_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    await fill(path)
    opened = []
    for _ in range(2):
        db = await open_database(path)
        opened.append(db.checked_pages)
        await db.close()
    assert opened == [True, False]
    assert mode(tmp_path / "town.db.checked") == 0o600

    stamp = path.stat()
    damage_a_middle_page(path)
    # Put the mtime back: the ctime still moves, and the check still runs.
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    with pytest.raises(DamagedDatabase, match="is damaged"):
        await open_database(path)


async def test_a_damaged_database_can_still_be_read_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    await fill(path, beads=300)
    damage_a_middle_page(path)
    before = digest(path)

    db = await open_database(path, allow_damaged=True)
    try:
        assert db.damage.startswith(f"{path} is damaged (")
        assert await db.schema_version() > 0
        with pytest.raises(DamagedDatabase) as refused:
            async with db.write() as conn:
                await conn.execute("DELETE FROM beads")
        assert str(refused.value) == db.damage
    finally:
        await db.close()
    assert digest(path) == before


def test_reveal_through_the_real_at(secret_town: Town) -> None:
    shown = run(secret_town.root, "config", "get", "agents.deacon.env", "--reveal", "--json")
    assert shown.returncode == 0, shown.stderr
    assert PLAIN in shown.stdout
    hidden = run(secret_town.root, "config", "get", "agents.deacon.env", "--json")
    assert hidden.returncode == 0 and PLAIN not in hidden.stdout
