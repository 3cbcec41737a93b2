"""What the session host needs to know about one coding-agent CLI, as data.

Facts (keys, screens, dialogs) come from running each CLI for real; see
shared/research/real-agents.md. Everything that differs between runtimes lives
here, so the PTY host, the detector and the approval flow stay generic.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tundra_tui.domain.agents import Runtime
from tundra_tui.domain.errors import TundraError

ESC = b"\x1b"
ENTER = b"\r"
UP = b"\x1b[A"
DOWN = b"\x1b[B"

COMMON_ENV: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "COLORTERM",
    "XDG_*_HOME",
    "XDG_RUNTIME_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)
"""What every agent may take from the daemon's environment (shell-style patterns).

An allow-list, not a deny-list: the daemon's environment holds the operator's
multiplexer handles (TMUX, TMUX_PANE, STY), agent sockets (SSH_AUTH_SOCK) and
tokens of every service, and an agent must not reach any of them (F1, F12).
The CA bundle paths let an agent's TLS work behind an inspecting proxy. TERM is
not here: the PTY host sets its own."""


def allowed_env(base_env: Mapping[str, str], patterns: Sequence[str]) -> dict[str, str]:
    """The entries of `base_env` whose names match one of `patterns` (case matters)."""
    return {
        key: value
        for key, value in base_env.items()
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    }


@dataclass(frozen=True, slots=True)
class Dialog:
    """A first-run or start-up dialog the host may answer with `keys`.

    `trust` dialogs grant the agent access to a folder; they are answered only
    when the operator configured `auto_trust` for the runtime, never by default.
    """

    id: str
    pattern: re.Pattern[str]
    keys: Sequence[bytes]
    trust: bool = False


@dataclass(frozen=True, slots=True)
class InputTiming:
    """Input is typed, not pasted: text, a pause that grows with its length, then Enter.

    Several CLIs take a fast burst ending in Enter as a paste, and drop keys sent
    in the first half second after a screen appears (real-agents.md §8).
    """

    base_pause: float = 0.5
    per_char: float = 0.002
    max_pause: float = 2.0
    settle: float = 0.6
    """How long a fresh screen must stay put before keys are sent to it."""

    def pause_for(self, text: str) -> float:
        """Seconds to wait between the text and its Enter."""
        return min(self.base_pause + self.per_char * len(text), self.max_pause)


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything needed to start one agent's CLI."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Adapter:
    """One runtime: how to launch it, answer it and recognise its trouble screens."""

    runtime: Runtime
    approve_keys: bytes
    deny_keys: bytes
    submit_key: bytes = ENTER
    interrupt_keys: bytes = ESC
    dialogs: tuple[Dialog, ...] = ()
    rate_limited: re.Pattern[str] | None = None
    auth_failed: re.Pattern[str] | None = None
    timing: InputTiming = field(default_factory=InputTiming)
    default_args: tuple[str, ...] = ()
    auto_trust: bool = False
    patterns: Mapping[str, str] = field(default_factory=dict)
    """For `custom`: idle, working and approval regexes from config."""
    env_keys: tuple[str, ...] = ()
    """The runtime's own variables it may take from the daemon's environment (its
    credentials, endpoint and config dir), on top of `COMMON_ENV`."""
    model_env: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """For runtimes that speak to many providers (aider): (model pattern, that
    provider's variables). The pattern "" stands for no configured model."""

    def env_keys_for(self, model: str) -> tuple[str, ...]:
        """The variables this runtime may take from the daemon's environment for `model`."""
        model = model.lower()
        provider = tuple(
            key
            for pattern, keys in self.model_env
            if (fnmatch.fnmatchcase(model, pattern) if pattern else not model)
            for key in keys
        )
        return (*self.env_keys, *provider)

    def launch(
        self,
        *,
        command: str,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        base_env: Mapping[str, str],
        model: str = "",
    ) -> Launch:
        """The argv and environment to start this agent with.

        `command` may carry its own arguments (`python -m tool`); the configured
        `args` follow them. From `base_env` (the daemon's) only the allow-listed
        variables pass (`COMMON_ENV` and this runtime's own); `env` (what config
        and the host set) is laid over them and always passes.
        """
        try:
            words = shlex.split(command)
        except ValueError as error:
            raise TundraError(f"cannot parse command {command!r}: {error}") from error
        if not words:
            raise TundraError(
                f"no command configured for the {self.runtime.value} runtime "
                f"(set runtimes.{self.runtime.value}.command)"
            )
        argv = [*words, *self.default_args, *args]
        allowed = allowed_env(base_env, (*COMMON_ENV, *self.env_keys_for(model)))
        return Launch(argv=argv, env={**allowed, **env}, cwd=cwd)

    def dialog_on(self, screen: str) -> Dialog | None:
        """The dialog showing on `screen` that this adapter may answer, if any."""
        for dialog in self.dialogs:
            if dialog.pattern.search(screen) and (self.auto_trust or not dialog.trust):
                return dialog
        return None

    def trouble(self, screen: str) -> str | None:
        """'rate_limited' or 'auth_failed' when the screen shows that, else None."""
        if self.auth_failed is not None and self.auth_failed.search(screen):
            return "auth_failed"
        if self.rate_limited is not None and self.rate_limited.search(screen):
            return "rate_limited"
        return None


def keys_from_config(text: str) -> bytes:
    """Key names from config (`Enter`, `Esc`, `y`, `n Enter`) as the bytes to send."""
    names = {"enter": ENTER, "esc": ESC, "escape": ESC, "up": UP, "down": DOWN, "tab": b"\t"}
    out = b""
    for word in text.split():
        out += names.get(word.lower(), word.encode())
    return out
