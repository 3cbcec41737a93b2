"""The deny-list: command shapes no rule may ever approve, and the inbox always flags.

From the seed's tool firewall (§7.1): wiping the filesystem, reading or sending SSH keys
and credentials, printing API keys, touching crypto wallets, force pushes, piping a
download into a shell, `chmod -R 777 /`, `mkfs` and `dd` onto a device. A match never
blocks the operator (they may still approve by hand); it stops every automatic answer.

Commands are matched after normalising, so spelling tricks do not dodge a shape: Unicode
compatibility forms (fullwidth letters) fold to ASCII, invisible characters (zero-width,
bidi, controls) are dropped, shell quotes and backslashes are removed (`r""m` is `rm`),
and runs of blanks are one space. Normalising can only make more commands match, never
fewer: a false alarm costs the operator one key, a miss could cost the machine.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shape:
    """One dangerous kind of command: its name (shown to the operator) and its pattern."""

    name: str
    pattern: re.Pattern[str]


def _shape(name: str, pattern: str) -> Shape:
    return Shape(name, re.compile(pattern, re.IGNORECASE))


# A command starts a line or follows a separator, a pipe, `sudo`, `env`, `xargs`, `$(`…
_START = r"(?:^|[;&|(`{!]|\$\(|\bsudo\s|\bdoas\s|\bexec\s|\benv\s|\bxargs\s|\bnohup\s|\btime\s)\s*"
_OPTS = r"(?:\s+-{1,2}[\w-]+(?:=\S*)?)*"
"""Any options, each a word starting with `-`."""
_RECURSIVE = r"(?:-[a-z]*r[a-z]*\b|--recursive\b)"
_FORCE = r"(?:-[a-z]*f[a-z]*\b|--force\b)"
_ROOTISH = r"(?:/|/\*|~/?|~/\*|\$home/?|\$\{home\}/?|\.\./?|/\.\.?/?|/[a-z]+/?\*?)"
"""A target that is the whole tree, home, or a top directory (`/usr`, `/etc/*`)."""
_TOP = r"(?:/|/\*|~/?|~/\*|\$home/?|\$\{home\}/?)"
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
_SHELLS = r"(?:ba|z|da|k|fi|c|tc)?sh\b|(?:python[\d.]*|perl|ruby|node|php)\s*(?:-\s*)?(?=$|[;&|)])"
"""A shell, or an interpreter reading its program from standard input."""

SHAPES: tuple[Shape, ...] = (
    _shape(
        "deletes the whole filesystem or home (rm -rf /)",
        r"(?<![\w.-])rm\b" + r"(?=[^;&|]*\s" + _RECURSIVE + r")"
        r"(?:\s+\S+)*?\s+" + _ROOTISH + r"(?=\s|$|[;&|)])",
    ),
    _shape("rm with --no-preserve-root", r"\brm\b[^;&|]*--no-preserve-root"),
    _shape(
        "recursive delete of the whole tree (find / -delete)",
        r"(?<![\w.-])find\s+" + _TOP + r"(?:\s|$)[^;&|]*(?:-delete\b|-exec\s+rm\b)",
    ),
    _shape(
        "reads or sends SSH keys or credentials",
        _SECRET_FILES,
    ),
    _shape(
        "prints a token (gh auth token, credential helpers)",
        r"\bgh\s+auth\s+(?:token|status\s+(?:-t|--show-token))\b"
        r"|\bgit\s+credential(?:-\w+)?\s+(?:fill|get)\b"
        r"|\baws\s+(?:configure\s+(?:get|export-credentials)|sts\s+get-session-token)\b"
        r"|\bsecurity\s+find-(?:generic|internet)-password\b",
    ),
    _shape(
        "prints API keys or secrets from the environment",
        _START + r"(?:printenv|env|set|export\s+-p|declare\s+-x)\s*(?:$|[;&|>])"
        r"|\b(?:echo|printf|printenv|cat|curl|wget|nc|print)\b[^;&|]*(?:" + _KEY_VARS + r")"
        r"|\bprintenv\s+\w*(?:key|secret|token|passw(?:or)?d|credential)\w*"
        r"|/proc/(?:self|\d+|\$\$)/environ\b",
    ),
    _shape("touches a crypto wallet", _WALLETS),
    _shape(
        "force-pushes (git push --force / -f / --force-with-lease / +ref)",
        r"\bgit\b(?:\s+-[c-]\s*\S+)*\s+push\b[^;&|]*"
        r"(?:\s--force(?:-with-lease|-if-includes)?\b|\s-[a-z]*f[a-z]*\b|\s\+\S+)",
    ),
    _shape(
        "pipes a download into a shell (curl | sh)",
        r"\b(?:curl|wget|fetch|iwr|invoke-webrequest)\b[^;&]*\|\s*(?:sudo\s+)?(?:\S*/)?"
        r"(?:" + _SHELLS + r")"
        r"|(?:ba|z|da|k)?sh\s+(?:-c\s+)?(?:<\(|\"?\$\()\s*(?:curl|wget)\b",
    ),
    _shape(
        "makes the whole tree world-writable (chmod -R 777 /)",
        r"\bch(?:mod|own|grp)\b(?=[^;&|]*\s"
        + _RECURSIVE
        + r")[^;&|]*\s"
        + _TOP
        + r"(?=\s|$|[;&|)])",
    ),
    _shape("formats a filesystem (mkfs)", r"\bmkfs(?:\.\w+)?\b|\bmke2fs\b|\bwipefs\b"),
    _shape(
        "writes a raw device (dd of=/dev/…, > /dev/sda)",
        r"\bdd\b[^;&|]*\bof=/dev/(?!null\b|zero\b|stdout\b|stderr\b|tty\b)"
        r"|>\s*/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk)\w*",
    ),
    _shape("fork bomb", r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:"),
)
"""Every shape, checked in order; the first match names the danger."""

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


def denied_shape(command: str) -> str:
    """The name of the first dangerous shape `command` has, or '' if none."""
    text = normalise(command)
    if not text:
        return ""
    for shape in SHAPES:
        if shape.pattern.search(text):
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
