"""No typing into its own terminal: a seccomp filter that refuses TIOCSTI and TIOCLINUX.

TIOCSTI pushes bytes into a terminal's input queue as if they were typed. An
agent's child could push `y` into the agent's own PTY while its approval prompt
waits, and the agent would take it for the operator's key. Linux 6.2 can turn
TIOCSTI off system-wide (`dev.tty.legacy_tiocsti = 0`), but not for root and not
where the setting is left on, so each agent gets a filter of its own before exec,
as bubblewrap does: those two ioctls fail with EPERM in the agent and everything
it starts; every other call is untouched. The filter is a few BPF instructions
built here, with no library to install.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import termios

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | 1
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_NR, _ARCH, _ARG1 = 0, 4, 24
"""Offsets in `struct seccomp_data`: the call number, the ABI, the low word of args[1]
(little-endian; the kernel takes an ioctl's request as 32 bits, so the low word is it)."""
_X32 = 0x40000000
TIOCLINUX = 0x541C
DENIED = (termios.TIOCSTI, TIOCLINUX)

_ABIS: dict[str, tuple[tuple[int, int], ...]] = {
    # (AUDIT_ARCH_*, the ioctl call's number in that ABI): native first, then 32-bit compat.
    "x86_64": ((0xC000003E, 16), (0x40000003, 54)),
    "aarch64": ((0xC00000B7, 29), (0x40000028, 54)),
}

Instruction = tuple[int, int, int, int]
_Step = tuple[int, int, str | None, str | None]
"""(opcode, k, label to jump to when true, when false); None is the next instruction."""


def program(machine: str) -> list[Instruction] | None:
    """The filter for `machine` (as `platform.machine()` names it), None where unknown."""
    abis = _ABIS.get(machine)
    if abis is None:
        return None
    steps: list[_Step | str] = [(_LD_ABS, _ARCH, None, None)]
    for index, (arch, ioctl) in enumerate(abis):
        after = f"abi{index + 1}"
        steps.append((_JEQ, arch, None, after))
        steps.append((_LD_ABS, _NR, None, None))
        if index == 0 and machine == "x86_64":
            steps.append((_JGE, _X32, "deny", None))  # the x32 ABI shares this arch value
        steps.append((_JEQ, ioctl, None, "allow"))
        steps.append((_LD_ABS, _ARG1, None, None))
        steps += [(_JEQ, request, "deny", None) for request in DENIED]
        steps.append((_RET, _RET_ALLOW, None, None))
        steps.append(after)
    steps += ["allow", (_RET, _RET_ALLOW, None, None), "deny", (_RET, _RET_EPERM, None, None)]
    labels: dict[str, int] = {}
    for step in steps:
        if isinstance(step, str):
            labels[step] = sum(1 for s in steps[: steps.index(step)] if not isinstance(s, str))
    code: list[Instruction] = []
    for step in steps:
        if isinstance(step, str):
            continue
        op, k, true, false = step
        pc = len(code)
        jt = labels[true] - pc - 1 if true else 0
        jf = labels[false] - pc - 1 if false else 0
        code.append((op, jt, jf, k))
    return code


def deny_terminal_injection() -> bool:
    """Install the filter in this process (meant for a forked child before exec).

    Returns False where it cannot be installed (another machine, no seccomp); the
    agent then runs without it, and the caller may say so.
    """
    code = program(platform.machine())
    if code is None:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    raw = b"".join(struct.pack("HBBI", *instruction) for instruction in code)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Program(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    prog = _Program(len(code), ctypes.addressof(buffer))
    if os.geteuid() != 0:
        # Required to install a filter without privilege; it also stops setuid programs
        # (sudo) from gaining rights inside the agent, which it should not do anyway.
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    result = libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
    return bool(result == 0)
