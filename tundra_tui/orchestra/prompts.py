"""Role prompts and the work prompt typed into an agent that takes a bead.

Role prompts are files the user can override: `orchestra.prompts.<role>` (a path,
relative to the town) beats `.tundra/prompts/<role>.md`, which beats the file shipped
in `tundra_tui/prompts/`. A work prompt is typed into a terminal as one line, so it
is built as one: the `[tundra work]` header the demo agent (and a person reading the
screen) recognises, the role template with the bead filled in, and the contract,
which no template can leave out. Everything in it is made visible first: bead
titles, descriptions and notes may have been written by an agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from string import Template

from tundra_tui.config import LayeredConfig
from tundra_tui.domain.agents import Role
from tundra_tui.domain.beads import Bead, BeadNote
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.handover import work_header
from tundra_tui.domain.sanitize import visible
from tundra_tui.town import Town

SHIPPED = Path(__file__).resolve().parent.parent / "prompts"
MAX_TEMPLATE = 64 * 1024
"""A prompt file larger than this is a mistake (a wrong path), not a prompt."""
_CUT = "…"


def prompt_path(town: Town, config: LayeredConfig, role: Role | str) -> Path:
    """The file a role's prompt comes from: config, then the town's override, then ours."""
    name = Role(role).value
    configured = config.get(f"orchestra.prompts.{name}")
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() else town.root / path
    override = town.state_dir / "prompts" / f"{name}.md"
    if override.is_file():
        return override
    return SHIPPED / f"{name}.md"


def load_role_prompt(town: Town, config: LayeredConfig, role: Role | str) -> str:
    """The text of a role's prompt (see `prompt_path`); a configured file that cannot be
    read is an error naming it, never a silent fall back to the default."""
    path = prompt_path(town, config, role)
    try:
        if path.stat().st_size > MAX_TEMPLATE:
            raise TundraError(f"prompt file {path} is larger than {MAX_TEMPLATE} bytes")
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise TundraError(
            f"cannot read the {Role(role).value} prompt {path}: {error.strerror or error}"
        ) from None


def one_line(text: str) -> str:
    """`text` as one visible line: whitespace runs (newlines too) become one space."""
    return visible(" ".join(text.split()), single_line=True)


def first_task(template: str, *, agent: str, target: str) -> str:
    """A role prompt given as an agent's first task (`at up`), as one line."""
    return one_line(Template(template).safe_substitute(agent=agent, target=target))


def contract(bead_id: int, branch: str) -> str:
    """What every agent that takes a bead is told to do, in the commands it runs."""
    return (
        f"Contract: commit your work on branch {branch}. When it is done, report with "
        f"`at submit {bead_id} -m SUMMARY`; if you cannot finish it, "
        f"`at done {bead_id} --fail --reason WHY`. Keep notes for whoever comes next with "
        f"`at bead note {bead_id} -m TEXT`. Ask with `at mail send mayor -m TEXT`."
    )


def work_prompt(
    template: str,
    *,
    bead: Bead,
    notes: Sequence[BeadNote],
    agent: str,
    branch: str,
    target: str,
    max_chars: int,
) -> str:
    """The one line typed to hand `bead` to `agent`, at most about `max_chars` long.

    The template's `$bead_id $title $description $notes $branch $target $agent` are
    filled in (`safe_substitute`: any other `$` stays as written); a template that
    does not show the description gets the bead appended. When the whole is too long
    the notes, then the description, are cut, pointing at `at bead show N`; the
    header and the contract are never cut.
    """
    header = work_header(bead.id, bead.title)
    tail = one_line(contract(bead.id, branch))
    description = one_line(bead.description) or "(none)"
    noted = one_line("; ".join(f"({n.author}) {n.body}" for n in notes)) or "(none)"
    pointer = f" {_CUT} (full text: `at bead show {bead.id}`)"

    def render(desc: str, notes_text: str) -> str:
        values = {
            "bead_id": str(bead.id),
            "title": one_line(bead.title),
            "description": desc,
            "notes": notes_text,
            "branch": branch,
            "target": target,
            "agent": agent,
        }
        body = Template(template).safe_substitute(values)
        if "$description" not in template and "${description}" not in template:
            body += f" Description: {desc} Notes: {notes_text}"
        return " ".join([header, one_line(body), tail])

    text = render(description, noted)
    over = len(text) - max_chars
    if over <= 0:
        return text
    if len(noted) > len(pointer):
        keep = max(0, len(noted) - over - len(pointer))
        noted = noted[:keep].rstrip() + pointer
        text = render(description, noted)
        over = len(text) - max_chars
    if over > 0 and len(description) > len(pointer):
        keep = max(0, len(description) - over - len(pointer))
        description = description[:keep].rstrip() + pointer
        text = render(description, noted)
    return text
