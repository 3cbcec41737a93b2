"""The deny-list: command shapes no rule may ever approve, and the inbox always flags.

From the seed's tool firewall (§7.1): wiping the filesystem, reading or sending SSH keys
and credentials, printing API keys, touching crypto wallets, force pushes, piping a
download into a shell, `chmod -R 777 /`, `mkfs` and `dd` onto a device. A match never
blocks the operator (they may still approve by hand); it stops every automatic answer.

Commands are matched after normalising, so spelling tricks do not dodge a shape: Unicode
compatibility forms (fullwidth letters) fold to ASCII, invisible characters (zero-width,
bidi, controls) are dropped, shell quotes and backslashes are removed (`r""m` is `rm`),
and runs of blanks are one space. What a command does (`rm`, `find`, `chmod`, `git push`,
a download piped into a shell) is read from each simple command's words; files and
variables are searched for anywhere. Every doubt errs towards a match: a false alarm costs
the operator one key, a miss could cost the machine. A command longer than `MAX_CHECKED`
is not read at all and is flagged as too long to check.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache


@dataclass(frozen=True, slots=True)
class Shape:
    """One dangerous kind of command: its name (shown to the operator) and its test, a
    pattern searched in the whole command or a check of each simple command's words."""

    name: str
    pattern: str | None = None
    words: Callable[[list[str]], bool] | None = None


def _shape(name: str, pattern: str) -> Shape:
    return Shape(name, pattern=pattern)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compiled on the first check, not at import: the shapes' patterns take about 10 ms to
    compile, and every client imports this module (the protocol does) before its first frame."""
    return re.compile(pattern, re.IGNORECASE)


_RECURSIVE = re.compile(r"-[a-z]*r[a-z]*|--recursive")
_ROOTISH = re.compile(
    r"/|/\*|~/?|~/\*|\$home/?|\$\{home\}/?|\.\./?|/\.\.?/?|/[a-z]+/?\*?", re.IGNORECASE
)
"""A target that is the whole tree, home, or a top directory (`/usr`, `/etc/*`)."""
_TOP = re.compile(r"/|/\*|~/?|~/\*|\$home/?|\$\{home\}/?", re.IGNORECASE)
_SEPARATORS = re.compile(r"[;&|()`]|\$\(")
_PIPELINES = re.compile(r"[;&()`]|\|\||\$\(")


def _after(words: list[str], names: tuple[str, ...]) -> list[str] | None:
    """The words after the first that runs one of `names` (`rm`, `/bin/rm`), or None."""
    for index, word in enumerate(words):
        if word.rsplit("/", 1)[-1] in names:
            return words[index + 1 :]
    return None


def _rm_tree(words: list[str]) -> bool:
    rest = _after(words, ("rm",))
    if rest is None:
        return False
    if "--no-preserve-root" in rest:
        return True
    recursive = any(_RECURSIVE.fullmatch(w) for w in rest if not w.startswith("--no-"))
    return recursive and any(_ROOTISH.fullmatch(w) for w in rest)


def _find_tree(words: list[str]) -> bool:
    rest = _after(words, ("find",))
    if not rest or not _TOP.fullmatch(rest[0]):
        return False
    return "-delete" in rest or any(
        w == "-exec" and i + 1 < len(rest) and rest[i + 1].endswith("rm")
        for i, w in enumerate(rest)
    )


def _chmod_tree(words: list[str]) -> bool:
    rest = _after(words, ("chmod", "chown", "chgrp"))
    if rest is None:
        return False
    recursive = any(_RECURSIVE.fullmatch(w) for w in rest)
    return recursive and any(_TOP.fullmatch(w) for w in rest)


_FORCE_FLAGS = re.compile(r"--force(?:-with-lease|-if-includes)?(?:=\S*)?|-[a-z]*f[a-z]*|\+\S+")


def _force_push(words: list[str]) -> bool:
    rest = _after(words, ("git",))
    if rest is None or "push" not in rest:
        return False
    return any(_FORCE_FLAGS.fullmatch(w) for w in rest[rest.index("push") + 1 :])


_SECRET_FILES = (
    r"\.ssh/(?:id_\w+|identity\b|authorized_keys\b)|\.ssh/?(?=\s|$|[;&|>)])"
    r"|\.aws/(?:credentials|config)\b|\.netrc\b|\.git-credentials\b|\.pgpass\b"
    r"|\.docker/config\.json\b|\.kube/config\b|\.npmrc\b|\.pypirc\b"
    r"|\.config/gh/hosts\.yml\b|\.gnupg\b|\.password-store\b"
    r"|(?:^|[\s/=<])\.env(?!\.(?:example|sample|template|dist)\b)(?:\.[\w-]+)?(?=\s|$|[;&|>)])"
    r"|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.(?:pem|p12|pfx)\b"
)
_KEY_VARS = (
    r"\$\{?\w*(?:api_?key|secret|token|passw(?:or)?d|credential|private_?key)\w*\}?"
    r"|\$\{?(?:aws_secret_access_key|aws_session_token|github_token|gh_token"
    r"|openai_api_key|anthropic_api_key|gemini_api_key|google_api_key|hf_token)\}?"
)
_WALLETS = (
    r"(?:wallet\.dat\b|\.bitcoin/|\.ethereum/keystore|\.electrum/|\.monero/|exodus/"
    r"|\.solana/id\.json|solana/id\.json|metamask|phantom/|keystore/utc--|\bseed ?phrase\b"
    r"|\bmnemonic\b|\.atomic/|ledger live/)"
)
_DOWNLOADERS = ("curl", "wget", "fetch", "iwr", "invoke-webrequest")
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh"})
_INTERPRETERS = re.compile(r"python[\d.]*|perl|ruby|node|php")


def _download_to_shell(pipeline: list[list[str]]) -> bool:
    """A download earlier in a pipeline feeds a shell (or an interpreter reading stdin)."""
    downloaded = False
    for words in pipeline:
        if downloaded and words:
            first = words[1:] if words[0] == "sudo" and len(words) > 1 else words
            name = first[0].rsplit("/", 1)[-1]
            if name in _SHELLS:
                return True
            if _INTERPRETERS.fullmatch(name) and all(w == "-" for w in first[1:]):
                return True
        downloaded = downloaded or _after(words, _DOWNLOADERS) is not None
    return False


SHAPES: tuple[Shape, ...] = (
    Shape("deletes the whole filesystem or home (rm -rf /)", words=_rm_tree),
    Shape("recursive delete of the whole tree (find / -delete)", words=_find_tree),
    _shape("reads or sends SSH keys or credentials", _SECRET_FILES),
    _shape(
        "prints a token (gh auth token, credential helpers)",
        r"\bgh\s+auth\s+(?:token|status\s+(?:-t|--show-token))\b"
        r"|\bgit\s+credential(?:-\w+)?\s+(?:fill|get)\b"
        r"|\baws\s+(?:configure\s+(?:get|export-credentials)|sts\s+get-session-token)\b"
        r"|\bsecurity\s+find-(?:generic|internet)-password\b",
    ),
    _shape(
        "prints API keys or secrets from the environment",
        r"(?:^|[;&|(`{!]|\bsudo\s|\bexec\s|\bxargs\s)\s*"
        r"(?:printenv|env|set|export\s+-p|declare\s+-x)\s*(?:$|[;&|>])"
        r"|" + _KEY_VARS + r"|\bprintenv\s+\w*(?:key|secret|token|passw(?:or)?d|credential)\w*"
        r"|/proc/(?:self|\d+|\$\$)/environ\b",
    ),
    _shape("touches a crypto wallet", _WALLETS),
    Shape("force-pushes (git push --force / -f / --force-with-lease / +ref)", words=_force_push),
    Shape("pipes a download into a shell (curl | sh)"),
    _shape(
        "runs a download as a shell script (bash <(curl …))",
        r"\b(?:ba|z|da|k)?sh\s+(?:-c\s+)?(?:<\(|\$\()\s*(?:curl|wget)\b",
    ),
    Shape("makes the whole tree world-writable (chmod -R 777 /)", words=_chmod_tree),
    _shape("formats a filesystem (mkfs)", r"\bmkfs(?:\.\w+)?\b|\bmke2fs\b|\bwipefs\b"),
    _shape(
        "writes a raw device (dd of=/dev/…, > /dev/sda)",
        r"\bof=/dev/(?!null\b|zero\b|stdout\b|stderr\b|tty\b)"
        r"|>\s*/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk)\w*",
    ),
    _shape("fork bomb", r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:"),
)
"""Every shape, checked in order; the first match names the danger. Shapes that look at
what one command does (its name, flags and targets) read its words, never a pattern
that scans on from each mention: that is quadratic on a crafted command."""
_PIPE_SHAPE = SHAPES[7]

_QUOTES = re.compile(r"""['"\\]""")
_BLANKS = re.compile(r"\s+")
_EMPTY_SUBST = re.compile(r"\$''|\$\"\"|\$\{IFS\}|\$IFS\b")


def normalise(command: str) -> str:
    """The command as matched: NFKC-folded, invisible characters dropped, shell quoting
    and `$IFS` tricks undone, blanks collapsed, lower case."""
    folded = unicodedata.normalize("NFKC", command)
    kept = "".join(
        char
        for char in folded
        if char in "\t\n" or unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp", "Mn")
    )
    kept = _EMPTY_SUBST.sub(" ", kept)
    kept = _QUOTES.sub("", kept)
    return _BLANKS.sub(" ", kept).strip().lower()


MAX_CHECKED = 2048
"""Longer commands are not matched (a regular expression may take quadratic time on a
crafted one, and this runs in the daemon's loop): they are flagged as unchecked, so no
rule answers them either."""


@lru_cache(maxsize=1024)
def denied_shape(command: str) -> str:
    """The name of the first dangerous shape `command` has, or '' if none."""
    if len(command) > MAX_CHECKED:
        return f"is too long to check ({len(command)} characters)"
    text = normalise(command)
    if not text:
        return ""
    commands = [part.split() for part in _SEPARATORS.split(text)]
    pipelines = [[part.split() for part in chunk.split("|")] for chunk in _PIPELINES.split(text)]
    for shape in SHAPES:
        if shape is _PIPE_SHAPE:
            hit = any(_download_to_shell(pipeline) for pipeline in pipelines)
        elif shape.words is not None:
            hit = any(shape.words(words) for words in commands)
        else:
            hit = shape.pattern is not None and _compiled(shape.pattern).search(text) is not None
        if hit:
            return shape.name
    return ""


@dataclass(frozen=True, slots=True)
class AllowRule:
    """The operator's "always allow this command for this agent": exact words only.

    `subject` is the command as shown (secrets redacted); `digest` is of the exact words
    the request carried, so a rule never stores a secret yet matches nothing else.
    """

    id: int
    agent: str
    tool: str
    subject: str
    digest: str
    created_at: str
    created_by: str


def words_digest(tool: str, subject: str) -> str:
    """What a rule matches: the tool and the exact command, hashed."""
    return hashlib.sha256(f"{tool}\0{subject}".encode(errors="surrogatepass")).hexdigest()
