"""The agent's seccomp filter: TIOCSTI and TIOCLINUX fail, every other ioctl works."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tundra_tui.session.seccomp import program

PROBE = """
import fcntl, os, struct, termios
from tundra_tui.session.seccomp import deny_terminal_injection
master, slave = os.openpty()
print("installed", deny_terminal_injection())
fcntl.ioctl(slave, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
print("winsize ok")
try:
    fcntl.ioctl(slave, termios.TIOCSTI, b"y")
    print("injected")
except PermissionError:
    print("refused")
child = os.fork()
if child == 0:
    try:
        fcntl.ioctl(slave, termios.TIOCSTI, b"y")
        os._exit(3)
    except PermissionError:
        os._exit(0)
print("child", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
"""


@pytest.mark.skipif(program(platform.machine()) is None, reason="no filter for this machine")
def test_an_agent_cannot_push_keys_into_its_terminal_nor_can_its_children() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.split("\n")[:4] == ["installed True", "winsize ok", "refused", "child 0"]


def test_without_the_filter_the_same_probe_injects() -> None:
    """The probe itself works: with no filter, TIOCSTI is allowed here (root, or the legacy
    setting on), so the test above fails on code that installs nothing."""
    probe = PROBE.replace("deny_terminal_injection()", "False")
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    lines = done.stdout.split("\n")
    if lines[2] == "refused":
        pytest.skip("TIOCSTI is refused on this machine anyway (dev.tty.legacy_tiocsti = 0)")
    assert lines[2] == "injected"
