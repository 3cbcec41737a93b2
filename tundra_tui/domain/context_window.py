"""How full an agent's context is, estimated only from what its usage log says.

No runtime reports context use to us directly. The closest honest figure is the
prompt of the agent's latest model call (input plus cache tokens: the whole
conversation it sent) over the nominal window of its model family. A model we
do not recognise, or an agent with no usage yet, has no estimate at all.
"""

from __future__ import annotations

from tundra_tui.domain.metrics import UsageSample

CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("claude", 200_000),
    ("opus", 200_000),
    ("sonnet", 200_000),
    ("haiku", 200_000),
    ("gpt-5", 272_000),
    ("codex", 272_000),
    ("gemini", 1_048_576),
)
"""Model-name fragments and their published input windows, checked in order."""


def context_window(model: str) -> int | None:
    """The nominal input window of a model, or None for an unknown family."""
    name = model.lower()
    for fragment, window in CONTEXT_WINDOWS:
        if fragment in name:
            return window
    return None


def context_percent(sample: UsageSample | None, model: str = "") -> float | None:
    """Share of the window the latest call's prompt used, or None when unknowable.

    `model` is the roster's model, used when the sample does not name one.
    """
    if sample is None:
        return None
    window = context_window(sample.model or model)
    if window is None:
        return None
    prompt = sample.input_tokens + sample.cache_read_tokens + sample.cache_write_tokens
    return min(prompt * 100 / window, 100.0)
