"""State detection: the screen corpus, rule precedence, hooks, the tracker and `at detect`."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from detect_scores import GENERIC, SCREENS, Case, cases, generic_alone, routes, scores, table

from tundra_tui.cli.context import Context
from tundra_tui.cli.detect import add_parser, cmd_detect, detect_lines
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.detect import (
    GENERIC_RULES,
    NOTIFY_VERSIONS,
    SCREEN_RULES,
    Detected,
    Detection,
    Evidence,
    detect_screen,
    from_codex_notify,
    from_hook_event,
    matched_prompt,
    rules_for_custom,
)
from tundra_tui.session.tracker import StateTracker

REPO = Path(__file__).resolve().parent.parent


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# --- the corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(), ids=[case.id for case in cases()])
def test_corpus_screen_detected_as_labelled(case: Case) -> None:
    detection = detect_screen(case.runtime, case.lines())
    assert detection.state is case.expected, detection.evidence
    assert detection.evidence is not None and detection.evidence.source == "screen"


def test_corpus_covers_every_runtime_and_live_state() -> None:
    have = {(case.runtime, case.expected) for case in cases()}
    for runtime in ("claude", "codex", "aider", "gemini", "opencode", "demo", "custom"):
        for state in (Detected.WORKING, Detected.AWAITING_APPROVAL):
            assert (runtime, state) in have, f"no {state} screen for {runtime}"
        if runtime != "custom":  # custom has no idle rule: idle is unknown to it
            assert (runtime, Detected.IDLE) in have, f"no idle screen for {runtime}"


def test_corpus_scores_are_total() -> None:
    """Accuracy, approval recall and false-approval rate per runtime (printed with -s)."""
    by_runtime = scores()
    print(table(by_runtime))
    assert all(score.accuracy == 1.0 for score in by_runtime.values()), table(by_runtime)
    assert all(score.false_approvals == 0 for score in by_runtime.values())
    assert by_runtime["custom"].approvals >= 9 and by_runtime["custom"].approval_recall == 1.0


def test_scores_count_misses_and_false_approvals() -> None:
    """The helper itself: each wrong answer is scored as what it is."""
    wrong = [
        # An idle screen labelled an approval: a missed approval.
        Case("gemini", SCREENS / "gemini" / "idle-2.txt", Detected.AWAITING_APPROVAL),
        # An approval labelled idle: a false approval.
        Case("gemini", SCREENS / "gemini" / "awaiting_approval-1.txt", Detected.IDLE),
        Case("gemini", SCREENS / "gemini" / "idle-1.txt", Detected.IDLE),
    ]
    score = scores(wrong)["all"]
    assert (score.screens, score.correct, score.accuracy) == (3, 1, 1 / 3)
    assert (score.approvals, score.approvals_found, score.approval_recall) == (1, 0, 0.0)
    assert (score.others, score.false_approvals, score.false_approval_rate) == (2, 1, 0.5)
    assert len(score.misses) == 2


def test_no_screen_is_a_false_approval_under_any_runtime() -> None:
    """Precision first: no fixture that is not an approval (look-alikes included) is called
    one, whichever runtime reads it, by its own rules or the generic layer."""
    for path in sorted(SCREENS.glob("*/*.txt")):
        if path.name.startswith(("idle-", "working-", "unknown-")):
            for runtime in SCREEN_RULES:
                detection = detect_screen(runtime, _lines(path))
                assert detection.state is not Detected.AWAITING_APPROVAL, (runtime, path.name)


def test_generic_fixtures_are_read_by_runtimes_without_rules_for_them() -> None:
    generic = sorted((SCREENS / GENERIC).glob("*.txt"))
    kinds = {"-".join(path.name.split("-")[:2]) for path in generic}
    assert {"unknown-dialog", "unknown-lookalike"} <= kinds
    assert all("custom" in routes(path) for path in generic)
    named = SCREENS / GENERIC / "awaiting_approval-claude-1.0-bash.txt"
    assert routes(named) == ("custom", "claude")
    for path in generic:
        detection = detect_screen("custom", _lines(path))
        assert detection.evidence is not None
        if path.name.startswith(("awaiting_approval-", "working-", "unknown-dialog-")):
            assert detection.evidence.rule.startswith("generic."), path.name
            assert detection.evidence.versions == "generic"
        if path.name.startswith("unknown-dialog-"):
            assert detection.evidence.rule.startswith("generic.dialog."), path.name
        if path.name.startswith("unknown-lookalike-"):
            assert detection.evidence.rule == "none", path.name


# --- the generic layer -----------------------------------------------------------------


def test_a_generic_rule_never_matches_without_one_of_its_needles() -> None:
    """The needles only skip regions the pattern cannot match: on every fixture's bottom
    lines where a generic pattern matches, one of its needles is there."""
    for path in sorted(SCREENS.glob("*/*.txt")):
        visible = [line.rstrip() for line in _lines(path) if line.strip()]
        for rule in GENERIC_RULES:
            region = "\n".join(visible[-rule.region :])
            if rule.pattern.search(region):
                assert any(needle in region.lower() for needle in rule.needles), (rule.id, path)


def test_the_generic_layer_alone_never_calls_a_false_approval() -> None:
    alone = scores(generic_alone())["all"]
    assert alone.false_approvals == 0
    assert alone.approval_recall == 1.0, alone.misses


@pytest.mark.parametrize(
    "last",
    [
        "Overwrite config.toml? [y/N]",
        "Continue [Y/n]: ",
        "Proceed with the install? (y/n) y",
        "Delete 3 files? (yes/no)",
        "Run shell command? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: ",
        "│ Apply the patch? [y/n] │",
    ],
)
def test_a_yes_no_question_on_the_last_line_awaits_approval(last: str) -> None:
    detection = detect_screen("custom", ["$ agent run", "planning…", last])
    assert detection.state is Detected.AWAITING_APPROVAL, last
    assert detection.evidence is not None
    assert detection.evidence.rule == "generic.approval.yes_no"


@pytest.mark.parametrize(
    "last",
    [
        '+    answer = input("Overwrite? [y/n] ")',
        "-# Delete all caches? [y/N]",
        "> Proceed? [y/n]",
        '    print("Continue? (y/n)")',
        "Options are [y/n] and [a]ll, see the docs.",
    ],
)
def test_yes_no_look_alikes_on_the_last_line_are_not_approvals(last: str) -> None:
    assert detect_screen("custom", ["some output", last]).state is Detected.UNKNOWN, last


def test_a_yes_no_question_above_the_last_line_does_not_count() -> None:
    asked = ["Install plugins? [y/N]"]
    assert detect_screen("custom", asked).state is Detected.AWAITING_APPROVAL
    assert detect_screen("custom", [*asked, "Skipping plugins."]).state is Detected.UNKNOWN


def test_an_approval_with_work_or_an_idle_prompt_below_is_not_pending() -> None:
    menu = ["Do you want to proceed?", "❯ 1. Yes", "  2. No"]
    assert detect_screen("custom", menu).state is Detected.AWAITING_APPROVAL
    assert detect_screen("claude", menu).state is Detected.AWAITING_APPROVAL
    working = [*menu, "⠙ Running the migration… (ctrl+c to cancel)"]
    assert detect_screen("custom", working).state is Detected.WORKING
    # A Claude chat message that quotes its own prompt, with the prompt box under it.
    quoted = ["● It asks:", *menu, RULE, "❯", RULE, "  ? for shortcuts"]
    assert detect_screen("claude", quoted).state is Detected.IDLE


def test_claude_menu_words_quoted_in_a_message_are_not_an_approval() -> None:
    quoted = [
        "● The menu ends with:",
        "  3. No, and tell Claude what to do differently",
        "  and the footer Esc to cancel · Tab to amend",
        "  That is all.",
    ]
    assert detect_screen("claude", quoted).state is Detected.UNKNOWN
    live = [
        "Do you want to proceed?",
        "❯ 1. Yes",
        "  3. No, and tell Claude what to do differently",
    ]
    detection = detect_screen("claude", [*live, "  Esc to cancel · Tab to amend"])
    assert detection.evidence is not None and detection.evidence.rule == "claude.approval.proceed"
    assert detect_screen("claude", live[2:]).state is Detected.AWAITING_APPROVAL


def test_a_menu_is_live_only_with_a_marker_or_a_permission_question() -> None:
    plain = ["Choose a plan:", "1. Yes, the big one", "2. No, the small one"]
    assert detect_screen("custom", plain).state is Detected.UNKNOWN
    asked = ["Allow the tool to edit main.py?", "1. Allow once", "2. Deny"]
    assert detect_screen("custom", asked).state is Detected.AWAITING_APPROVAL
    marked = ["Pick one", "› 1. Yes, proceed", "  2. No"]
    assert detect_screen("custom", marked).state is Detected.AWAITING_APPROVAL
    single = ["Do you want to proceed?", "❯ 1. Yes"]
    assert detect_screen("custom", single).state is Detected.UNKNOWN


def test_esc_to_cancel_alone_is_not_working() -> None:
    """A dialog's or an approval's footer says it too; only a spinner line makes it work."""
    assert detect_screen("custom", ["Pick a theme", "Esc to cancel"]).state is Detected.UNKNOWN
    spinning = ["⠼ Reading files (esc to cancel, 4s)"]
    assert detect_screen("custom", spinning).state is Detected.WORKING


def test_own_rules_win_where_they_match() -> None:
    screen = _lines(SCREENS / GENERIC / "awaiting_approval-codex-numbered-menu.txt")
    own = detect_screen("codex", screen).evidence
    generic = detect_screen("custom", screen).evidence
    assert own is not None and own.rule == "codex.approval.question"
    assert own.versions == "codex 0.135.0, 0.150.1, 0.160.1, 0.169.0"
    assert generic is not None and generic.rule == "generic.approval.menu"


def test_a_dialog_overrules_an_own_idle_or_approval_answer() -> None:
    trust = ["Do you trust this workspace?", "❯ 1. Yes, trust it", "  2. No"]
    idle = detect_screen("claude", [*trust, RULE, "❯", RULE])
    assert idle.state is Detected.UNKNOWN and idle.evidence is not None
    assert idle.evidence.rule == "generic.dialog.trust"
    assert (
        idle.evidence.detail
        == "claude: line 6 from the bottom; a dialog, so not idle (claude.idle.prompt)"
    )
    approval = ["This folder is not trusted.", "Allow execution of [Shell]?", "● 1. Allow once"]
    vetoed = detect_screen("gemini", approval)
    assert vetoed.state is Detected.UNKNOWN and vetoed.evidence is not None
    assert "gemini.approval.allow_execution" in str(vetoed.evidence.detail)
    assert detect_screen("gemini", approval[1:]).state is Detected.AWAITING_APPROVAL


def test_an_update_notice_without_a_choice_is_not_a_dialog() -> None:
    idle = [RULE, "❯", RULE, "  ✓ Update available! Run: npm i -g @anthropic-ai/claude-code"]
    assert detect_screen("claude", idle).state is Detected.IDLE
    banner = [
        "Gemini CLI update available! 0.61.0 → 0.62.0",
        "Installed via npm. Attempting to automatically update now...",
        "▄▄▄▄",
        " >   Type your message or @path/to/file",
        "▀▀▀▀",
    ]
    assert detect_screen("gemini", banner).state is Detected.IDLE
    offer = ["✨ Update available! 0.36.0 -> 0.40.0", "› 1. Update now", "  2. Skip"]
    detection = detect_screen("codex", offer)
    assert detection.evidence is not None and detection.evidence.rule == "generic.dialog.update"


def test_a_generic_approval_gives_the_whole_prompt_to_approve() -> None:
    screen = _lines(SCREENS / GENERIC / "awaiting_approval-gemini-0.1-radio.txt")
    prompt = matched_prompt("custom", screen)
    assert prompt is not None
    assert prompt.startswith("│ Allow execution?") and "No (esc)" in prompt


def test_evidence_names_the_versions_its_rule_was_written_for() -> None:
    idle = detect_screen("claude", _lines(SCREENS / "claude" / "idle-1.txt")).to_dict()
    assert idle["evidence"]["versions"] == "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330"
    custom = detect_screen("custom", ["$ "], custom=rules_for_custom(r"^\$$"))
    assert custom.evidence is not None and custom.evidence.versions == "custom (tundra.toml)"
    nothing = detect_screen("custom", ["$ "]).to_dict()
    assert nothing["evidence"]["versions"] == ""
    hook = from_hook_event("Stop", {})
    assert hook is not None and hook.evidence is not None and hook.evidence.versions
    for runtime, rules in SCREEN_RULES.items():
        assert all(rule.versions.startswith(runtime) for rule in rules)


# --- rules -----------------------------------------------------------------------------

RULE = "─" * 60


def test_approval_beats_working_beats_idle() -> None:
    idle = [RULE, "❯", RULE, "  ⏸ manual mode on · ? for shortcuts"]
    working = ["* Sketching… (1s · ↓ 2 tokens)", *idle[:-1], "  esc to interrupt"]
    approval = [*working, "Do you want to proceed?", "❯ 1. Yes", "  4. No"]
    assert detect_screen("claude", idle).state is Detected.IDLE
    assert detect_screen("claude", working).state is Detected.WORKING
    assert detect_screen("claude", approval).state is Detected.AWAITING_APPROVAL


def test_blocking_dialog_beats_idle_but_not_working() -> None:
    dialog = [RULE, "❯", RULE, "Enter to confirm · Esc to cancel"]
    assert detect_screen("claude", dialog).evidence == Evidence(
        "screen",
        "claude.dialog.confirm",
        "Enter to confirm · Esc to cancel",
        "claude: line 1 from the bottom",
        "claude 2.0.76, 2.1.110, 2.1.216, 2.1.330",
    )
    assert detect_screen("claude", [*dialog, "esc to interrupt"]).state is Detected.WORKING


@pytest.mark.parametrize("runtime", ["claude", "demo", "codex", "gemini"])
def test_approval_scrolled_above_the_bottom_region_is_not_awaiting(runtime: str) -> None:
    approval = _lines(SCREENS / runtime / "awaiting_approval-1.txt")
    idle = _lines(SCREENS / runtime / "idle-1.txt")
    output = [f"output line {n}" for n in range(20)]
    assert detect_screen(runtime, approval).state is Detected.AWAITING_APPROVAL
    assert detect_screen(runtime, [*approval, *output, *idle]).state is Detected.IDLE


def test_blank_rows_do_not_count_towards_the_region() -> None:
    approval = _lines(SCREENS / "demo" / "awaiting_approval-1.txt")
    padded = [*approval, *([""] * 40), "   "]
    assert detect_screen("demo", padded).state is Detected.AWAITING_APPROVAL


def test_claude_prompt_with_no_break_space() -> None:
    assert detect_screen("claude", [RULE, "❯\u00a0", RULE]).state is Detected.IDLE
    draft = detect_screen("claude", [RULE, "❯\u00a0fix the tests", RULE])
    assert draft.state is Detected.IDLE
    assert draft.evidence is not None and draft.evidence.rule == "claude.idle.prompt"
    menu = ["Do you want to proceed?", "\u00a0❯\u00a01.\u00a0Yes", "   4. No"]
    assert detect_screen("claude", menu).state is Detected.AWAITING_APPROVAL


def test_claude_completion_summary_is_not_a_spinner() -> None:
    screen = ["✻ Churned for 9s · done 2:25 AM", RULE, "❯", RULE]
    assert detect_screen("claude", screen).state is Detected.IDLE
    assert detect_screen("claude", ["✶ Running… (3s · ↓ 9 tokens)"]).state is Detected.WORKING


def test_aider_streaming_answered_question_and_typed_answer() -> None:
    head = [RULE, "diff> SLOW hello"]
    assert detect_screen("aider", [*head, "Hello from the"]).state is Detected.WORKING
    pending = [*head, "calc.py", "Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: y"]
    assert detect_screen("aider", pending).state is Detected.AWAITING_APPROVAL
    answered = [*pending, "Tokens: 2.5k sent, 12 received.", RULE, "diff>"]
    assert detect_screen("aider", answered).state is Detected.IDLE
    quoted = [*head, "Hello", "Tokens: 1k sent, 1 received.", "> a quoted line"]
    assert detect_screen("aider", quoted).state is Detected.UNKNOWN


def test_codex_draft_in_the_composer_is_idle_not_streaming() -> None:
    screen = [
        "› SLOW hello",
        "• Hello from the fake model!",
        "  Worked for 9s • 02:26",
        "› dra",
        "  fake-model default · ~/work",
        "  ← for agents · ? for shortcuts",
    ]
    assert detect_screen("codex", screen).state is Detected.IDLE
    streaming = [*screen[:2], "› Ask Codex to do anything", *screen[4:]]
    assert detect_screen("codex", streaming).state is Detected.WORKING


def test_nothing_matched_is_an_explicit_unknown() -> None:
    for runtime in SCREEN_RULES:
        detection = detect_screen(runtime, ["", "   "])
        assert detection.state is Detected.UNKNOWN
        assert detection.evidence is not None and detection.evidence.rule == "none"


def test_unknown_runtime_is_an_error() -> None:
    with pytest.raises(TundraError, match="unknown runtime 'vim'"):
        detect_screen("vim", ["x"])


def test_evidence_is_json_ready_and_trimmed() -> None:
    long = "Do you want to run " + "x" * 500 + "?"
    detection = detect_screen("claude", [long, "❯ 1. Yes"])
    assert detection.evidence is not None
    assert len(detection.evidence.matched) <= 200
    assert json.loads(json.dumps(detection.to_dict()))["state"] == "awaiting_approval"
    aider = detect_screen("aider", [RULE, "diff>"]).evidence
    assert aider is not None and aider.matched == "───…\ndiff>"
    assert Detected.AWAITING_APPROVAL.agent_state is AgentState.AWAITING_APPROVAL


# --- custom rules ----------------------------------------------------------------------


def test_custom_runtime_uses_configured_patterns() -> None:
    rules = rules_for_custom(r"^\$$", r"^building\.\.\.", r"Proceed\? \[y/N\]")
    assert detect_screen("custom", ["$ "], custom=rules).state is Detected.IDLE
    working = detect_screen("custom", ["building...", "$ "], custom=rules)
    assert working.evidence is not None and working.evidence.rule == "custom.working"
    approval = detect_screen("custom", ["building...", "Proceed? [y/N]"], custom=rules)
    assert approval.state is Detected.AWAITING_APPROVAL


def test_custom_without_patterns_is_unknown_and_bad_patterns_are_errors() -> None:
    assert detect_screen("custom", ["$ "]).state is Detected.UNKNOWN
    assert rules_for_custom(None, "", None) == ()
    with pytest.raises(TundraError, match="working_pattern"):
        rules_for_custom(working_pattern="(unclosed")


def test_custom_patterns_extend_a_builtin_runtime() -> None:
    rules = rules_for_custom(approval_pattern=r"Overwrite \S+\?")
    screen = ["Overwrite calc.py?", "  esc to interrupt"]
    assert detect_screen("claude", screen).state is Detected.WORKING
    assert detect_screen("claude", screen, custom=rules).state is Detected.AWAITING_APPROVAL


def test_custom_rules_honour_their_region() -> None:
    rules = rules_for_custom(approval_pattern=r"Proceed\?", region=2)
    assert detect_screen("custom", ["Proceed?", "a", "b"], custom=rules).state is Detected.UNKNOWN
    assert (
        detect_screen("custom", ["Proceed?", "a"], custom=rules).state is Detected.AWAITING_APPROVAL
    )


# --- hooks and notify ------------------------------------------------------------------

PERMISSION = {
    "hook_event_name": "PermissionRequest",
    "session_id": "51689ca3",
    "tool_name": "Bash",
    "tool_input": {"command": "touch approved.txt", "description": "Run touch approved.txt"},
}


@pytest.mark.parametrize(
    ("event", "state"),
    [
        ("SessionStart", Detected.IDLE),
        ("UserPromptSubmit", Detected.WORKING),
        ("PreToolUse", Detected.WORKING),
        ("PermissionRequest", Detected.AWAITING_APPROVAL),
        ("PostToolUse", Detected.WORKING),
        ("Stop", Detected.IDLE),
    ],
)
def test_hook_events_map_to_states(event: str, state: Detected) -> None:
    detection = from_hook_event(event, {"hook_event_name": event})
    assert detection is not None and detection.state is state
    assert detection.evidence is not None and detection.evidence.source == "hook"


def test_permission_request_evidence_carries_the_tool_call() -> None:
    detection = from_hook_event("PermissionRequest", PERMISSION)
    assert detection is not None and detection.evidence is not None
    assert detection.evidence.rule == "claude.hook.permission_request"
    assert detection.evidence.matched == "PermissionRequest Bash: touch approved.txt"
    assert detection.evidence.detail is not None
    assert json.loads(detection.evidence.detail)["tool_input"]["command"] == "touch approved.txt"


def test_hooks_without_a_state() -> None:
    assert from_hook_event("SessionEnd", {"reason": "prompt_input_exit"}) is None
    assert from_hook_event("Notification", {"notification_type": "permission_prompt"}) is None
    assert from_hook_event("Bogus", {}) is None


def test_stop_and_prompt_keep_their_text_as_detail() -> None:
    stop = from_hook_event("Stop", {"last_assistant_message": "Done."})
    prompt = from_hook_event("UserPromptSubmit", {"prompt": "SLOW hello"})
    assert stop is not None and stop.evidence is not None and stop.evidence.detail == "Done."
    assert prompt is not None and prompt.evidence is not None
    assert prompt.evidence.detail == "SLOW hello"


def test_codex_notify() -> None:
    done = from_codex_notify(
        {"type": "agent-turn-complete", "thread-id": "t", "last-assistant-message": "Done."}
    )
    assert done == Detection(
        Detected.IDLE,
        Evidence(
            "notify",
            "codex.notify.agent_turn_complete",
            "agent-turn-complete",
            "Done.",
            NOTIFY_VERSIONS,
        ),
    )
    started = from_codex_notify({"type": "turn/started"})
    assert started is not None and started.state is Detected.WORKING
    assert from_codex_notify({"type": "something-else"}) is None
    assert from_codex_notify({}) is None


# --- the tracker -----------------------------------------------------------------------


def screen(state: Detected, rule: str = "") -> Detection:
    return Detection(state, Evidence("screen", rule or f"test.{state.value}", ""))


IDLE, WORKING, APPROVAL, UNKNOWN = (
    screen(Detected.IDLE),
    screen(Detected.WORKING),
    screen(Detected.AWAITING_APPROVAL),
    screen(Detected.UNKNOWN),
)


def test_tracker_publishes_idle_only_after_the_debounce() -> None:
    tracker = StateTracker("gemini")
    assert tracker.observe_screen(WORKING, 0.0, True).state is Detected.WORKING
    assert tracker.observe_screen(IDLE, 1.0, True).state is Detected.WORKING
    assert tracker.current(1.49).state is Detected.WORKING
    assert tracker.current(1.5) == IDLE


def test_tracker_ignores_an_idle_flash_between_tool_calls() -> None:
    tracker = StateTracker("gemini")
    tracker.observe_screen(WORKING, 0.0, True)
    tracker.observe_screen(IDLE, 1.0, True)
    assert tracker.observe_screen(WORKING, 1.3, True).state is Detected.WORKING
    assert tracker.current(1.9).state is Detected.WORKING


def test_tracker_publishes_approval_at_once_and_leaves_it_at_once() -> None:
    tracker = StateTracker("gemini")
    tracker.observe_screen(WORKING, 0.0, True)
    assert tracker.observe_screen(APPROVAL, 0.1, True) == APPROVAL
    assert tracker.observe_screen(IDLE, 0.2, True) == IDLE


def test_tracker_starts_unknown_and_debounces_the_first_idle() -> None:
    tracker = StateTracker("demo")
    start = tracker.current(0.0)
    assert start.state is Detected.UNKNOWN and start.evidence is not None
    tracker.observe_screen(IDLE, 0.0, True)
    assert tracker.current(0.2).state is Detected.UNKNOWN
    assert tracker.current(0.5) == IDLE


def test_activity_counts_as_working_for_runtimes_that_hide_it() -> None:
    tracker = StateTracker("codex")
    tracker.observe_screen(IDLE, 0.0, False)
    assert tracker.current(1.0) == IDLE
    busy = tracker.observe_screen(IDLE, 2.0, True)
    assert busy.state is Detected.WORKING
    assert busy.evidence is not None and busy.evidence.rule == "activity.screen_changed"
    assert tracker.current(2.6).state is Detected.WORKING
    # The activity ended at 2.6; idle must hold for 0.5 s from then, not from when we look.
    assert tracker.current(3.0).state is Detected.WORKING
    assert tracker.current(3.1) == IDLE


def test_activity_is_ignored_where_working_is_always_visible() -> None:
    tracker = StateTracker("gemini")
    tracker.observe_screen(IDLE, 0.0, False)
    tracker.current(1.0)
    assert tracker.observe_screen(IDLE, 2.0, True) == IDLE
    forced = StateTracker("gemini", activity_means_working=True)
    forced.observe_screen(IDLE, 0.0, True)
    assert forced.current(0.1).state is Detected.WORKING


def test_hook_approval_holds_until_the_prompt_is_answered() -> None:
    tracker = StateTracker("claude")
    tracker.observe_screen(WORKING, 0.0, True)
    hook = from_hook_event("PermissionRequest", PERMISSION)
    assert hook is not None
    assert tracker.observe_structured(hook, 1.0) == hook
    # The prompt is painted ~0.4 s after the hook; until then the screen shows the spinner.
    assert tracker.observe_screen(WORKING, 1.2, True) == hook
    assert tracker.observe_screen(APPROVAL, 1.4, True) == hook
    assert tracker.current(60.0) == hook
    # Answered with a key on the prompt: the screen goes back to working.
    assert tracker.observe_screen(WORKING, 61.0, True) == WORKING


def test_hook_approval_ends_when_the_screen_turns_idle() -> None:
    tracker = StateTracker("claude")
    hook = from_hook_event("PermissionRequest", PERMISSION)
    assert hook is not None
    tracker.observe_structured(hook, 0.0)
    tracker.observe_screen(UNKNOWN, 0.5, True)
    assert tracker.current(0.6) == hook
    # Esc on the prompt: no hook fires, the idle prompt comes back. The approval
    # goes at once; the repaint itself is activity, so idle follows after it settles.
    assert tracker.observe_screen(IDLE, 5.0, True).state is Detected.WORKING
    assert tracker.current(6.0).state is Detected.WORKING
    assert tracker.current(6.1) == IDLE


def test_a_later_hook_replaces_a_hook_approval() -> None:
    tracker = StateTracker("claude")
    hook = from_hook_event("PermissionRequest", PERMISSION)
    after = from_hook_event("PostToolUse", {"tool_name": "Bash", "tool_input": {}})
    assert hook is not None and after is not None
    tracker.observe_structured(hook, 0.0)
    assert tracker.observe_structured(after, 3.0) == after


def test_fresh_structured_signals_beat_the_screen_then_expire() -> None:
    tracker = StateTracker("claude", structured_ttl=2.0)
    tracker.observe_screen(WORKING, 0.0, True)
    stop = from_hook_event("Stop", {"last_assistant_message": "Done."})
    assert stop is not None
    # Stop fires ~0.1 s before the idle prompt is painted: publish idle at once.
    assert tracker.observe_structured(stop, 1.0) == stop
    assert tracker.observe_screen(WORKING, 1.05, False) == stop
    prompt = from_hook_event("UserPromptSubmit", {"prompt": "go"})
    assert prompt is not None
    tracker.observe_screen(IDLE, 2.0, False)
    assert tracker.observe_structured(prompt, 10.0) == prompt
    assert tracker.current(11.0) == prompt
    # Interrupted with Esc: no hook, so the idle screen wins once the hook is stale.
    assert tracker.current(12.0).state is Detected.WORKING
    assert tracker.current(12.5) == IDLE


def test_screen_approval_beats_a_fresh_working_hook() -> None:
    tracker = StateTracker("claude")
    prompt = from_hook_event("UserPromptSubmit", {"prompt": "go"})
    assert prompt is not None
    tracker.observe_structured(prompt, 0.0)
    assert tracker.observe_screen(APPROVAL, 0.5, True) == APPROVAL


def test_every_published_state_has_evidence() -> None:
    tracker = StateTracker("codex")
    hook = from_hook_event("PermissionRequest", PERMISSION)
    assert hook is not None
    published = [
        tracker.current(0.0),
        tracker.observe_screen(UNKNOWN, 0.1, True),
        tracker.observe_screen(WORKING, 0.2, True),
        tracker.observe_screen(IDLE, 0.3, True),
        tracker.current(2.0),
        tracker.observe_structured(hook, 3.0),
        tracker.observe_screen(IDLE, 4.0, False),
    ]
    assert all(detection.evidence is not None for detection in published)


# --- at detect -------------------------------------------------------------------------


def _screen_text(runtime: str, name: str) -> str:
    return (SCREENS / runtime / name).read_text(encoding="utf-8")


def test_detect_lines_one_result_per_line() -> None:
    lines = [
        json.dumps({"agent": "claude", "screen": _screen_text("claude", "idle-1.txt")}),
        json.dumps({"screen": _screen_text("codex", "awaiting_approval-1.txt")}),
        "{not json",
        json.dumps({"agent": "gemini", "screen": _screen_text("gemini", "working-1.txt")}),
        "",
        json.dumps({"agent": "vim", "screen": "x"}),
        json.dumps(["a list"]),
        json.dumps({"agent": "demo", "screen": 3}),
    ]
    out = [json.loads(line) for line in detect_lines(lines, default_agent="codex")]
    assert [item["state"] for item in out] == [
        "idle",
        "awaiting_approval",
        "unknown",
        "working",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert out[0]["evidence"]["rule"] == "claude.idle.prompt"
    assert out[1]["evidence"]["rule"] == "codex.approval.question"
    assert out[2]["error"].startswith("malformed JSON")
    assert "unknown runtime" in out[4]["error"]
    assert "error" in out[5] and "error" in out[6]


def test_detect_lines_without_any_runtime_reports_an_error_line() -> None:
    out = [json.loads(line) for line in detect_lines([json.dumps({"screen": "demo❯"})])]
    assert out == [{"state": "unknown", "error": 'no runtime: give --agent or an "agent" field'}]


def _parse(argv: list[str]) -> argparse.Namespace:
    root = argparse.ArgumentParser(prog="at")
    add_parser(root.add_subparsers())
    return root.parse_args(argv)


async def test_cmd_detect_reads_stdin_and_writes_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["detect", "--agent", "demo"])
    stdin = "\n".join(
        [
            json.dumps({"screen": _screen_text("demo", "working-1.txt")}),
            "garbage",
            json.dumps({"agent": "aider", "screen": _screen_text("aider", "idle-2.txt")}),
        ]
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert await args.handler(Context(args)) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [item["state"] for item in out] == ["working", "unknown", "idle"]
    assert args.handler is cmd_detect


def test_detect_parser_rejects_an_unknown_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(["detect", "--agent", "vim"])
    assert _parse(["detect"]).agent is None


_DRIVER = textwrap.dedent(
    """
    import argparse, asyncio
    from tundra_tui.cli.context import Context
    from tundra_tui.cli.detect import add_parser
    root = argparse.ArgumentParser()
    add_parser(root.add_subparsers())
    args = root.parse_args(["detect", "--agent", "claude"])
    raise SystemExit(asyncio.run(args.handler(Context(args))))
    """
)


def test_detect_end_to_end_flushes_each_line() -> None:
    """Through a real pipe: each answer arrives before the next question is asked."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None
    answers = []
    for name in ("working-1.txt", "awaiting_approval-1.txt", "idle-2.txt"):
        proc.stdin.write(json.dumps({"screen": _screen_text("claude", name)}) + "\n")
        proc.stdin.flush()
        answers.append(json.loads(proc.stdout.readline())["state"])
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert answers == ["working", "awaiting_approval", "idle"]


def test_at_detect_through_the_real_command_needs_no_town(tmp_path: Path) -> None:
    line = json.dumps({"agent": "demo", "screen": _screen_text("demo", "idle-1.txt")})
    result = subprocess.run(
        [sys.executable, "-m", "tundra_tui", "detect"],
        cwd=tmp_path,
        input=line + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "idle"


def test_custom_region_must_be_positive() -> None:
    with pytest.raises(TundraError, match="region"):
        rules_for_custom(idle_pattern="x", region=0)
