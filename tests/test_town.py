"""Finding and creating towns: precedence, messages, the sample file, .tundra/ and .gitignore."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tundra_tui.domain.errors import TundraError
from tundra_tui.town import (
    Town,
    ensure_state_dir,
    find_town,
    init_town,
    write_text_atomic,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the real home, $TUNDRA_TOWN and any enclosing git repository out of the tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNDRA_TOWN", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def _make_town(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "tundra.toml").write_text("")
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_find_town_prefers_explicit_then_env_then_parents(tmp_path: Path) -> None:
    explicit = _make_town(tmp_path / "explicit")
    from_env = _make_town(tmp_path / "env")
    parent = _make_town(tmp_path / "parent")
    deep = parent / "src" / "pkg"
    deep.mkdir(parents=True)
    env = {"TUNDRA_TOWN": str(from_env)}

    assert find_town(explicit, env=env, cwd=deep).root == explicit
    assert find_town(None, env=env, cwd=deep).root == from_env
    assert find_town(None, env={}, cwd=deep).root == parent
    assert find_town(None, env={"TUNDRA_TOWN": ""}, cwd=deep).root == parent


def test_find_town_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = _make_town(tmp_path / "t")
    monkeypatch.setenv("TUNDRA_TOWN", str(town))
    assert find_town(cwd=tmp_path).root == town


@pytest.mark.parametrize("source", ["explicit", "env"])
def test_find_town_names_a_chosen_path_without_tundra_toml(tmp_path: Path, source: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    explicit = empty if source == "explicit" else None
    env = {"TUNDRA_TOWN": str(empty)} if source == "env" else {}
    with pytest.raises(TundraError) as caught:
        find_town(explicit, env=env, cwd=tmp_path)
    assert str(caught.value) == (
        f"no town at {empty}: tundra.toml not found (run `at init {empty}`)"
    )


def test_find_town_outside_any_town(tmp_path: Path) -> None:
    with pytest.raises(TundraError) as caught:
        find_town(None, env={}, cwd=tmp_path)
    assert str(caught.value) == (
        "not in a town: no tundra.toml in CWD or any parent (run `at init` or pass --town)"
    )


def test_town_paths_are_resolved_and_live_under_the_state_dir(tmp_path: Path) -> None:
    town = Town(tmp_path / "a" / ".." / "t")
    root = (tmp_path / "t").resolve()
    assert town.root == root
    assert town.config_path == root / "tundra.toml"
    assert town.state_dir == root / ".tundra"
    assert town.db_path == root / ".tundra" / "town.db"
    assert town.local_config_path == root / ".tundra" / "local.toml"
    assert town.socket_path == root / ".tundra" / "at.sock"
    assert town.worktrees_dir == root / ".tundra" / "worktrees"
    assert town.logs_dir == root / ".tundra" / "logs"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[general]\nname = "Harbour"\n', "Harbour"),
        ('[general]\nname = ""\n', "t"),
        ("[general]\nname = 3\n", "t"),
        ("[general\n", "t"),
        (None, "t"),
    ],
)
def test_town_name_falls_back_to_the_directory(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    root = tmp_path / "t"
    root.mkdir()
    if content is not None:
        (root / "tundra.toml").write_text(content)
    assert Town(root).name == expected


def test_init_creates_a_town(tmp_path: Path) -> None:
    town, done = init_town(tmp_path / "new" / "town", name="Harbour")

    assert town.root == tmp_path / "new" / "town"
    assert town.config_path.is_file()
    assert town.name == "Harbour"
    assert _mode(town.state_dir) == 0o700
    assert done[0] == f"created {town.root}"
    assert any("wrote tundra.toml" in line for line in done)
    assert not (town.root / ".gitignore").exists()
    assert find_town(None, env={}, cwd=town.root).root == town.root


def test_init_escapes_the_name_into_valid_toml(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t", name='say "hi" \\ bye')
    assert town.name == 'say "hi" \\ bye'


def test_init_keeps_an_existing_tundra_toml(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    original = b"# mine\n[general]\nname = 'kept'\n"
    (root / "tundra.toml").write_bytes(original)

    town, done = init_town(root, name="other")

    assert town.config_path.read_bytes() == original
    assert "kept existing tundra.toml" in done
    assert town.state_dir.is_dir()


def test_init_tightens_an_existing_state_dir(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / ".tundra").mkdir(parents=True)
    (root / ".tundra").chmod(0o755)
    town, _ = init_town(root)
    assert _mode(town.state_dir) == 0o700


def test_ensure_state_dir_reports_a_file_in_the_way(tmp_path: Path) -> None:
    root = _make_town(tmp_path / "t")
    (root / ".tundra").write_text("not a directory")
    with pytest.raises(TundraError, match=r"cannot create .*\.tundra: File exists"):
        ensure_state_dir(Town(root))


@needs_git
def test_init_in_a_git_repo_ignores_the_state_dir_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app").mkdir()
    (repo / "app" / ".gitignore").write_text("*.pyc")

    _, first = init_town(repo / "app")
    _, second = init_town(repo / "app")

    assert (repo / "app" / ".gitignore").read_text() == "*.pyc\n.tundra/\n"
    assert "added .tundra/ to .gitignore" in first
    assert ".tundra/ already in .gitignore" in second
    ignored = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "-q", "app/.tundra/"], check=False
    )
    assert ignored.returncode == 0


@needs_git
@pytest.mark.parametrize("line", [".tundra", "/.tundra/", "  .tundra/  "])
def test_init_respects_an_existing_ignore_line(tmp_path: Path, line: str) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    gitignore = tmp_path / "repo" / ".gitignore"
    gitignore.write_text(f"{line}\n")
    init_town(tmp_path / "repo")
    assert gitignore.read_text() == f"{line}\n"


def test_init_without_git_on_path_skips_gitignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    town, done = init_town(tmp_path / "t")
    assert not (town.root / ".gitignore").exists()
    assert not any("gitignore" in line for line in done)


def test_init_under_a_regular_file_fails_and_creates_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = sorted(tmp_path.rglob("*"))

    with pytest.raises(TundraError) as caught:
        init_town(blocker / "town")

    assert str(caught.value) == f"cannot create town at {blocker / 'town'}: Not a directory"
    assert sorted(tmp_path.rglob("*")) == before


def test_init_at_a_regular_file_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TundraError, match="Not a directory"):
        init_town(blocker)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_init_in_an_unwritable_directory_fails(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(TundraError, match="Permission denied"):
            init_town(locked / "t")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")],
)
def test_init_reports_an_unwritable_file_system_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    def refuse(path: Path, text: str) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("tundra_tui.town.write_text_atomic", refuse)
    with pytest.raises(TundraError) as caught:
        init_town(tmp_path / "t")
    assert str(caught.value) == f"cannot create town at {tmp_path / 't'}: {reason}"
    assert not (tmp_path / "t" / "tundra.toml").exists()


def test_write_text_atomic_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "f.toml"
    target.write_text("old")
    target.chmod(0o640)

    write_text_atomic(target, "new\r\n")

    assert target.read_bytes() == b"new\r\n"
    assert _mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.toml"]


def test_write_text_atomic_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text("old")
    link = tmp_path / "link.toml"
    link.symlink_to(real)

    write_text_atomic(link, "new")

    assert link.is_symlink()
    assert real.read_text() == "new"
