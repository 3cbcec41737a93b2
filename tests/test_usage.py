"""The Claude JSONL line parser (`claude.parse`, what the daemon's reader runs on each line) on
real and hostile lines, and the demo agent's log read back (the readers, cursors and files are
test_usage_readers's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tundra_tui.demo_agent.usage import UsageLog
from tundra_tui.usage.claude import ClaudeReader, parse
from tundra_tui.usage.pricing import PRICES, Price, price_for
from tundra_tui.usage.records import Cursor, RawSample

# The shape of a real Claude Code line (research/real-agents.md §3), extra fields included.
REAL = (
    '{"type":"assistant","timestamp":"2026-11-22T02:25:39.423Z","requestId":"req_ab0d",'
    '"sessionId":"36d0","requestedModel":"claude-opus-5-5","message":{"id":"msg_3fc5",'
    '"model":"claude-opus-5-5","role":"assistant","content":[{"type":"text","text":"hi"}],'
    '"stop_reason":"tool_use","usage":{"input_tokens":4978,"cache_creation_input_tokens":0,'
    '"cache_read_input_tokens":0,"output_tokens":56,"output_tokens_details":{"thinking_tokens":0},'
    '"server_tool_use":{"web_search_requests":0},"service_tier":"standard",'
    '"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0}}}}'
)


def answer(
    message_id: str = "msg_1",
    *,
    model: str = "claude-sonnet-4-5",
    at: str = "2026-11-20T10:00:00.000Z",
    usage: Any = None,
    **extra: Any,
) -> str:
    """One assistant line as Claude Code writes it (compact JSON)."""
    tokens = (
        usage
        if usage is not None
        else {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 5000,
        }
    )
    message = {"id": message_id, "model": model, "role": "assistant", "usage": tokens}
    record = {"type": "assistant", "timestamp": at, "message": message, **extra}
    return json.dumps(record, separators=(",", ":"))


# ---- pricing -------------------------------------------------------------------------------


def test_prices_are_by_family_and_unknown_models_are_priced_as_sonnet() -> None:
    assert price_for("claude-opus-4-5") == (PRICES["opus"], True)
    assert price_for("demo-HAIKU") == (PRICES["haiku"], True)
    assert price_for("gpt-5") == (PRICES["sonnet"], False)
    assert Price(1.0, 2.0, 3.0, 4.0).cost(1_000_000, 1_000_000, 1_000_000, 1_000_000) == 10.0


# ---- reader --------------------------------------------------------------------------------


def parsed(line: bytes | str, runtime: str = "claude") -> RawSample | None:
    """An answer's sample from one line, or None for any other line (bad ones included)."""
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    found = parse(raw, {}, runtime=runtime)
    return found if isinstance(found, RawSample) else None


def test_a_real_claude_line_gives_one_sample() -> None:
    sample = parsed(REAL)
    assert sample is not None
    assert sample.source_key == "claude:msg_3fc5:req_ab0d"
    assert sample.at == "2026-11-22T02:25:39.423000Z"  # the store's sortable form
    assert (sample.model, sample.runtime, sample.session) == ("claude-opus-5-5", "claude", "36d0")
    assert (sample.input, sample.output) == (4978, 56)


def test_blocks_of_one_answer_are_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [answer("msg_a"), answer("msg_a"), answer("msg_b"), answer("msg_a")]
    path.write_text("".join(line + "\n" for line in lines))
    samples = ClaudeReader("demo").read(path, Cursor()).samples
    assert sorted(s.source_key for s in samples) == ["claude:msg_a:", "claude:msg_b:"]
    assert all(s.runtime == "demo" for s in samples)


def test_cache_tokens_null_counts_and_naive_timestamps_are_accepted() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": None}
    sample = parsed(answer(usage=usage, at="2026-11-20T10:00:00"))
    assert sample is not None
    assert (sample.cache_write, sample.cache_read) == (0, 0)
    assert sample.at == "2026-11-20T10:00:00.000000Z"


def test_the_request_id_keys_an_answer_without_a_message_id() -> None:
    record = json.loads(answer())
    del record["message"]["id"]
    record["requestId"] = "req_9"
    sample = parsed(json.dumps(record))
    assert sample is not None and sample.source_key == "claude::req_9"


def test_a_bad_byte_in_the_content_does_not_lose_the_usage() -> None:
    line = answer().replace('"role"', '"note":"caf\\u00e9","role"').encode()
    broken = line.replace(b"caf\\u00e9", b"caf\xe9\xff")
    sample = parsed(broken)
    assert sample is not None and sample.input == 100


def _bad_usage(**change: Any) -> str:
    usage = {"input_tokens": 10, "output_tokens": 5, **change}
    return answer(usage=usage)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"type":"assistant","usage":', id="half-written"),
        pytest.param(b'["assistant","usage"]', id="array"),
        pytest.param(answer().replace('"assistant"', '"user"', 1).encode(), id="user-line"),
        pytest.param(b'{"type":"assistant","message":"usage"}', id="message-not-object"),
        pytest.param(answer(usage=[1, 2]).encode(), id="usage-not-object"),
        pytest.param(_bad_usage(input_tokens=-1).encode(), id="negative"),
        pytest.param(_bad_usage(input_tokens=True).encode(), id="bool"),
        pytest.param(_bad_usage(input_tokens="10").encode(), id="string"),
        pytest.param(_bad_usage(input_tokens=1.5).encode(), id="float"),
        pytest.param(_bad_usage(input_tokens=10**30).encode(), id="huge-count"),
        pytest.param(answer().replace("100", "9" * 5000).encode(), id="5000-digit-int"),
        pytest.param(
            b'{"type":"assistant","usage":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            id="deeply-nested",
        ),
        pytest.param(answer(at="yesterday").encode(), id="bad-timestamp"),
        pytest.param(answer(at="9999-12-31T23:59:59-23:59").encode(), id="timestamp-overflow"),
        pytest.param(answer(message_id="").encode(), id="no-id"),
        pytest.param(
            answer(usage={"input_tokens": 0, "output_tokens": 0}, model="<synthetic>").encode(),
            id="synthetic-zero",
        ),
        pytest.param(b"\xff\xfe\x00garbage assistant usage", id="binary"),
    ],
)
def test_hostile_or_useless_lines_are_skipped_without_raising(line: bytes) -> None:
    # Over-long lines never reach the parser: test_usage_readers's read_jsonl skips them.
    assert parsed(line) is None


def test_the_model_name_is_kept_as_written_but_bounded() -> None:
    sample = parsed(answer(model="[bold]opus[/bold]" + "x" * 1000))
    assert sample is not None
    assert sample.model.startswith("[bold]opus[/bold]") and len(sample.model) == 200


def test_the_demo_agent_log_reads_back_to_the_cost_it_reports(tmp_path: Path) -> None:
    path = tmp_path / "crew-1.jsonl"
    log = UsageLog(path, "0b4d1a6e-2f0c-4c1e-9a55-3f2f6c1d7e01", "demo-opus", "/w", "0.1.0")
    log.user("fix it")
    log.call([{"type": "text", "text": "ok"}, {"type": "tool_use", "name": "Bash"}], "x", {}, 5)
    log.call([{"type": "text", "text": "done"}], "end_turn", {}, 5)
    log.turn_end(10, 3)
    samples = ClaudeReader("demo").read(path, Cursor()).samples
    assert len(samples) == 2
    # Priced with the demo agent's own family table, the log gives back the cost it reported.
    cost = sum(
        price_for(s.model)[0].cost(s.input, s.output, s.cache_write, s.cache_read) for s in samples
    )
    assert cost == pytest.approx(log.cost, abs=1e-6)
