"""Packaging: the wheel carries the styles, installs non-editable, and the core stays headless."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tundra_tui.resources import styles_dir, stylesheets

ROOT = Path(__file__).resolve().parents[1]
CORE = ("domain", "store", "session", "orchestra", "usage", "daemon")


def test_styles_are_found_from_the_checkout() -> None:
    assert styles_dir() == ROOT / "styles"
    assert [p.name for p in stylesheets()] == sorted(
        p.name for p in (ROOT / "styles").glob("*.tcss")
    )


def test_importing_the_core_loads_no_textual() -> None:
    modules = [
        f"tundra_tui.{package}.{path.stem}" if path.stem != "__init__" else f"tundra_tui.{package}"
        for package in CORE
        for path in sorted((ROOT / "tundra_tui" / package).glob("*.py"))
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import tundra_tui.cli\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"the core imported {done.stdout.strip()}"


@pytest.mark.slow
def test_non_editable_install_into_a_fresh_virtualenv(tmp_path: Path) -> None:
    """Build the wheel, install it with no source tree in sight, and run `at --help`."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("auto_tundra-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tundra_tui/styles/tundra.tcss" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Dependencies come from this interpreter's site-packages (read through a .pth file),
    # so the test needs no network; the package itself comes only from the wheel, installed
    # by the new venv's own pip so this environment is left alone.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    at = venv / "bin" / "at"
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(at), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "init" in done.stdout
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import tundra_tui, tundra_tui.resources as r;"
            " print(tundra_tui.__file__); print(r.styles_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.splitlines()
    assert str(venv) in where[0], "the wheel's copy was imported, not the checkout"
    assert where[1].startswith(str(venv)) and where[1].endswith("tundra_tui/styles")


def _fenced_commands(text: str) -> list[str]:
    blocks = text.split("```sh\n")[1:]
    return [block.split("```", 1)[0].strip() for block in blocks]


def test_readme_gives_two_commands_and_ci_runs_the_test_one_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    run_cmd, test_cmd = _fenced_commands(readme)[:2]
    assert "pip install -c constraints.txt ." in run_cmd
    assert run_cmd.endswith("bin/at tui --demo")
    assert "pytest" in test_cmd and "-c constraints.txt" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, ".ci/run must run the README's test command exactly"


def test_constraints_pin_every_dependency_exactly() -> None:
    """A fresh install next month must resolve what the tests ran with: every runtime and
    dev dependency named in pyproject.toml has an exact `==` pin in constraints.txt."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {
        re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted
    }
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    unpinned = sorted(name for name in names if not pins.get(name))
    assert not unpinned, f"not pinned in constraints.txt: {unpinned}"
