"""A scripted fake model server for driving real agent CLIs offline.

Standard library only. Binds 127.0.0.1 and nothing else. Speaks enough of

* the Anthropic Messages API (``POST /v1/messages``, SSE or JSON, and
  ``/v1/messages/count_tokens``) for Claude Code,
* OpenAI Chat Completions (``POST /v1/chat/completions``, SSE or JSON) for
  Aider (through litellm) and OpenCode,
* OpenAI Responses (``POST /v1/responses``, SSE or JSON) for Codex,
* the Gemini API (``:streamGenerateContent?alt=sse``, ``:generateContent``,
  ``:countTokens``) for Gemini CLI,

plus ``GET /v1/models``. Anything else gets a 404 JSON error. With
``server.fail`` set (``fail_auth()`` 401, ``fail_rate_limit()`` 429 with a reset
an hour ahead), every model request gets that error instead (the version matrix).

The answer is scripted by the text of the last user turn:

* ``RUN: <cmd>`` -> a call of the client's shell tool (``Bash`` for Claude Code,
  ``exec_command`` for Codex, ``run_shell_command`` for Gemini, ``bash`` for
  OpenCode); a client that sent no tools (Aider) gets a text answer with a
  fenced ``bash`` block instead;
* ``SLOW`` anywhere -> the plain answer, streamed one word per ``word_delay``;
* ``MENTION: <file>`` -> a text answer naming the file;
* ``WRITE: <path>`` -> a call of the client's file-write tool (``Write``,
  ``write_file``, ``write``, ...), ``FETCH: <url>`` -> a call of its web-fetch
  tool; a client without such a tool gets a text answer saying so;
* the last turn is a tool result -> ``Done. The command finished; nothing else to do.``;
* anything else -> ``Hello from the fake model! You said: <first line>``.

Usage numbers are estimates (``len(text) / 4``), plausible but not real.

Run it as a program::

    python tests/real_agents/fake_model_server.py --port 0 --log requests.jsonl

The first line on stdout is ``PORT <n>``. Or import it::

    server, port = start_server(log_path=...)
    ...
    server.shutdown()
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"
DONE_TEXT = "Done. The command finished; nothing else to do."
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization", "cookie"}
)
SECRET_QUERY = frozenset({"key", "api_key", "apikey"})
SHELL_TOOL_NAMES = ("Bash", "exec_command", "run_shell_command", "bash", "shell", "local_shell")

TITLE_REQUEST = re.compile(r"title generator|(concise|short|single-line)[\w ,-]{0,40}title", re.I)

Json = dict[str, Any]


# --------------------------------------------------------------------------- the script


class Reply:
    """What the fake model says: text and/or one shell tool call."""

    def __init__(
        self,
        text: str,
        *,
        tool_name: str | None = None,
        tool_args: Json | None = None,
        slow: bool = False,
        kind: str = "text",
    ) -> None:
        self.text = text
        self.tool_name = tool_name
        self.tool_args = tool_args or {}
        self.slow = slow
        self.kind = kind

    @property
    def has_tool(self) -> bool:
        return self.tool_name is not None

    def words(self) -> list[str]:
        """The text split into stream pieces: whole words with their trailing space."""
        return re.findall(r"\S+\s*|\s+", self.text)


def estimate_tokens(value: Any) -> int:
    """A plausible token count: a quarter of the JSON length, at least 1."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _strip_reminders(text: str) -> str:
    return re.sub(r"<system-reminder>.*?</system-reminder>", "", text, flags=re.S).strip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _tool_schema_props(tool: Json) -> Json:
    """The JSON-schema ``properties`` of a tool in any of the wire formats."""
    for key in ("input_schema", "parameters", "parametersJsonSchema"):
        schema = tool.get(key)
        if isinstance(schema, dict):
            props = schema.get("properties")
            if isinstance(props, dict):
                return props
    fn = tool.get("function")
    if isinstance(fn, dict):
        return _tool_schema_props(fn)
    return {}


def shell_args(tool: Json, cmd: str) -> Json:
    """Arguments for a shell tool call, shaped after the tool's declared schema."""
    props = _tool_schema_props(tool)
    args: Json = {}
    key = "cmd" if "cmd" in props else "command"
    prop = props.get(key, {})
    if isinstance(prop, dict) and prop.get("type") == "array":
        args[key] = ["bash", "-lc", cmd]
    else:
        args[key] = cmd
    if "description" in props or not props:
        args["description"] = f"Run {cmd}"
    if "sandbox_permissions" in props:
        args["sandbox_permissions"] = "require_escalated"
    if "justification" in props:
        args["justification"] = f"Allow running `{cmd}`?"
    return args


def pick_shell_tool(tools: Iterable[Json]) -> Json | None:
    by_name = {name: tool for tool in tools if (name := tool_name_of(tool))}
    for name in SHELL_TOOL_NAMES:
        if name in by_name:
            return by_name[name]
    return None


def tool_name_of(tool: Json) -> str | None:
    name = tool.get("name")
    if isinstance(name, str):
        return name
    fn = tool.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return str(fn["name"])
    return None


WRITE_TOOL_NAMES = ("Write", "write_file", "write", "create_file", "Edit", "edit", "replace")
FETCH_TOOL_NAMES = ("WebFetch", "web_fetch", "webfetch", "fetch")


def pick_named_tool(tools: Iterable[Json], names: Iterable[str]) -> Json | None:
    by_name = {name: tool for tool in tools if (name := tool_name_of(tool))}
    return next((by_name[name] for name in names if name in by_name), None)


def tool_args(tool: Json, values: Json) -> Json:
    """Arguments for ``tool`` from ``values`` (``path``, ``content``, ``url``, ``prompt``),
    under the names its schema declares."""
    props = _tool_schema_props(tool)
    aliases = {
        "path": ("file_path", "filePath", "path", "absolute_path"),
        "content": ("content", "new_string", "text"),
        "old": ("old_string", "oldString"),
        "url": ("url",),
        "prompt": ("prompt",),
        "format": ("format",),
    }
    args: Json = {}
    for key, value in values.items():
        for name in aliases.get(key, (key,)):
            if name in props:
                args[name] = value
                break
    return args


def script(user_text: str, *, tool_result_last: bool, tools: list[Json]) -> Reply:
    """Decide the answer from the last user turn (see the module docstring)."""
    text = _strip_reminders(user_text)
    # A prompt typed after a denied call arrives with that call's result: the prompt wins.
    if tool_result_last and not re.search(r"\b(RUN|WRITE|FETCH|MENTION):|SLOW", text):
        return Reply(DONE_TEXT, kind="done")
    run = re.search(r"RUN:\s*(.+)", text)
    if run:
        cmd = run.group(1).strip()
        tool = pick_shell_tool(tools)
        if tool is None:
            return Reply(
                f"Please run this command:\n\n```bash\n{cmd}\n```\n",
                kind="run-fenced",
                slow="SLOW" in text,
            )
        return Reply(
            f"I will run {cmd}.",
            tool_name=tool_name_of(tool),
            tool_args=shell_args(tool, cmd),
            kind="run-tool",
            slow="SLOW" in text,
        )
    write = re.search(r"WRITE:\s*(\S+)", text)
    if write and tools:  # a side query without tools (a title) is no answer
        tool = pick_named_tool(tools, WRITE_TOOL_NAMES)
        if tool is None:
            return Reply(f"I have no tool to write {write.group(1)}.", kind="no-tool")
        values = {"path": write.group(1), "content": "written by the fake model\n", "old": ""}
        return Reply(
            f"I will write {write.group(1)}.",
            tool_name=tool_name_of(tool),
            tool_args=tool_args(tool, values),
            kind="write-tool",
        )
    fetch = re.search(r"FETCH:\s*(\S+)", text)
    if fetch and tools:  # a side query without tools (a title) is no answer
        tool = pick_named_tool(tools, FETCH_TOOL_NAMES)
        if tool is None:
            return Reply(f"I have no tool to fetch {fetch.group(1)}.", kind="no-tool")
        url = fetch.group(1)
        values = {"url": url, "prompt": f"Summarise {url}", "format": "text"}
        return Reply(
            f"I will fetch {url}.",
            tool_name=tool_name_of(tool),
            tool_args=tool_args(tool, values),
            kind="fetch-tool",
        )
    mention = re.search(r"MENTION:\s*(\S+)", text)
    if mention:
        name = mention.group(1)
        return Reply(f"To do that I need to edit {name}. Please add {name} to the chat.")
    return Reply(
        f"Hello from the fake model! You said: {_first_line(text)}",
        slow="SLOW" in text,
        kind="slow" if "SLOW" in text else "text",
    )


def synth_from_schema(schema: Any) -> Any:
    """A minimal JSON value satisfying a JSON schema (for structured side queries)."""
    if not isinstance(schema, dict):
        return {}
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return synth_from_schema(schema[key][0])
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: synth_from_schema(sub) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    return "fake"


# --------------------------------------------------------------------------- helpers


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _text_of(content: Any) -> str:
    """Concatenate the text parts of a message content in any of the wire formats."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                text = block.get("text")
                if isinstance(text, str) and block.get("type") in (
                    None,
                    "text",
                    "input_text",
                    "output_text",
                ):
                    parts.append(text)
    return "\n".join(parts)


def _last_user_text(texts: list[str]) -> str:
    """The text block that looks like what the user typed (not a system reminder)."""
    for text in reversed(texts):
        if _strip_reminders(text):
            return text
    return texts[-1] if texts else ""


class FakeModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, log_path: Path | None, word_delay: float) -> None:
        super().__init__((HOST, port), Handler)
        self.log_path = log_path
        self.word_delay = word_delay
        self._log_lock = threading.Lock()
        self.request_count = 0
        self.fail: tuple[int, Json, dict[str, str]] | None = None
        self.first_token_delay: float | None = None  # SLOW replies: else 2 word delays

    def fail_auth(self) -> None:
        """Every model request from now on: 401, in all four APIs' error shapes at once."""
        error = {
            "type": "authentication_error",
            "message": "invalid x-api-key: Incorrect API key provided",
            "code": 401,
            "status": "UNAUTHENTICATED",
        }
        self.fail = (401, {"type": "error", "error": error}, {})

    def fail_rate_limit(self, reset_in: int = 3600) -> None:
        """Every model request from now on: 429 with a reset ``reset_in`` seconds ahead."""
        reset = int(time.time()) + reset_in
        error = {
            "type": "rate_limit_error",
            "message": f"Rate limit reached. Please try again in {reset_in // 60}m0s.",
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
        }
        headers = {
            "retry-after": str(reset_in),
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": str(reset),
            "x-ratelimit-reset-requests": f"{reset_in // 60}m0s",
        }
        self.fail = (429, {"type": "error", "error": error}, headers)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def log_event(self, record: Json) -> None:
        with self._log_lock:
            self.request_count += 1
            if self.log_path is None:
                return
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")


class Handler(BaseHTTPRequestHandler):
    server: FakeModelServer
    protocol_version = "HTTP/1.1"

    # ----------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep stderr quiet; requests go to the JSONL log

    def _read_body(self) -> Json:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            return {"_unparsed": raw[:2000].decode("utf-8", "replace")}
        return body if isinstance(body, dict) else {"_value": body}

    def _log(self, body: Json, reply: Reply | None, usage: Json | None) -> None:
        split = urlsplit(self.path)
        query = [(k, "***" if k.lower() in SECRET_QUERY else v) for k, v in parse_qsl(split.query)]
        headers = {
            k: ("***" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()
        }
        self.server.log_event(
            {
                "time": time.time(),
                "method": self.command,
                "path": split.path,
                "query": dict(query),
                "headers": headers,
                "body": body,
                "reply": None
                if reply is None
                else {"kind": reply.kind, "text": reply.text, "tool": reply.tool_name},
                "usage": usage,
            }
        )

    def _send_json(self, status: int, payload: Json) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _event(self, data: Json | str, event: str | None = None) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {event}\n" if event else ""
        self._chunk(f"{head}data: {payload}\n\n")

    def _pieces(self, reply: Reply) -> Iterator[str]:
        """The reply text in stream pieces, pausing per word for SLOW replies."""
        if not reply.slow:
            if reply.text:
                yield reply.text
            return
        first = self.server.first_token_delay
        time.sleep(self.server.word_delay * 2 if first is None else first)
        for word in reply.words():
            yield word
            time.sleep(self.server.word_delay)

    # ----------------------------------------------------------------- routing

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.rstrip("/").endswith("/models"):
            models = [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]
            self._log({}, None, None)
            self._send_json(200, {"object": "list", "data": models})
            return
        self._log({}, None, None)  # a web-fetch tool's GET shows in the log
        self._not_found()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._read_body()
        if self.server.fail is not None:
            status, payload, headers = self.server.fail
            self._log(body, None, {"status": status})
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            if path.endswith("/messages/count_tokens"):
                tokens = estimate_tokens(body)
                self._log(body, None, {"input_tokens": tokens})
                self._send_json(200, {"input_tokens": tokens})
            elif path.endswith("/messages"):
                self._anthropic(body)
            elif path.endswith("/chat/completions"):
                self._chat_completions(body)
            elif path.endswith("/responses"):
                self._responses(body)
            elif ":countTokens" in path:
                tokens = estimate_tokens(body)
                self._log(body, None, {"totalTokens": tokens})
                self._send_json(200, {"totalTokens": tokens})
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                self._gemini(body, path)
            else:
                self._log(body, None, None)
                self._not_found()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _not_found(self) -> None:
        self._send_json(
            404, {"error": {"type": "not_found_error", "message": f"no route for {self.path}"}}
        )

    # ----------------------------------------------------------------- Anthropic

    def _anthropic(self, body: Json) -> None:
        messages = [m for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
        last = messages[-1] if messages else {}
        content = last.get("content")
        tool_result_last = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        texts: list[str] = []
        if isinstance(content, str):
            texts = [content]
        elif isinstance(content, list):
            texts = [
                b["text"]
                for b in content
                if isinstance(b, dict)
                and b.get("type") == "text"
                and isinstance(b.get("text"), str)
            ]
        reply = script(
            _last_user_text(texts), tool_result_last=tool_result_last, tools=body.get("tools", [])
        )
        model = str(body.get("model", "claude-fake"))
        input_tokens = estimate_tokens(body)
        output_tokens = estimate_tokens(reply.text) + (
            estimate_tokens(reply.tool_args) + 10 if reply.has_tool else 0
        )
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        self._log(body, reply, usage)
        msg_id = _new_id("msg_")
        tool_id = _new_id("toolu_")
        stop_reason = "tool_use" if reply.has_tool else "end_turn"
        if not body.get("stream"):
            blocks: list[Json] = [{"type": "text", "text": reply.text}]
            if reply.has_tool:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": reply.tool_name,
                        "input": reply.tool_args,
                    }
                )
            self._send_json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        self._start_sse()
        start_usage = dict(usage, output_tokens=1)
        self._event(
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        )
        self._event({"type": "ping"}, "ping")
        self._event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        )
        for piece in self._pieces(reply):
            self._event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                "content_block_delta",
            )
        self._event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        if reply.has_tool:
            self._event(
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": reply.tool_name,
                        "input": {},
                    },
                },
                "content_block_start",
            )
            self._event(
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(reply.tool_args),
                    },
                },
                "content_block_delta",
            )
            self._event({"type": "content_block_stop", "index": 1}, "content_block_stop")
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        )
        self._event({"type": "message_stop"}, "message_stop")
        self._end_sse()

    # ----------------------------------------------------------------- OpenAI chat

    def _chat_completions(self, body: Json) -> None:
        messages = body.get("messages", [])
        convo = [m for m in messages if m.get("role") in ("user", "assistant", "tool")]
        last = convo[-1] if convo else {}
        tool_result_last = last.get("role") == "tool"
        user_texts = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        # After a tool result the last user text is the prompt already answered, not a new one.
        user_text = user_texts[-1] if user_texts and not tool_result_last else ""
        tools = body.get("tools") or []
        system = _text_of(messages[0].get("content")) if messages else ""
        if not tools and TITLE_REQUEST.search(system):
            reply = Reply(
                _first_line(_strip_reminders(user_text))[:40] or "Fake title", kind="title"
            )
        else:
            reply = script(user_text, tool_result_last=tool_result_last, tools=tools)
        model = str(body.get("model", "fake-model"))
        prompt_tokens = estimate_tokens(body)
        completion_tokens = estimate_tokens(reply.text) + (
            estimate_tokens(reply.tool_args) if reply.has_tool else 0
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        self._log(body, reply, usage)
        chat_id = _new_id("chatcmpl-")
        created = int(time.time())
        finish = "tool_calls" if reply.has_tool else "stop"
        tool_call = {
            "id": _new_id("call_"),
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": json.dumps(reply.tool_args)},
        }
        if not body.get("stream"):
            message: Json = {"role": "assistant", "content": reply.text}
            if reply.has_tool:
                message["tool_calls"] = [tool_call]
            self._send_json(
                200,
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return

        def chunk(delta: Json, finish_reason: str | None = None, **extra: Any) -> Json:
            return {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }

        self._start_sse()
        self._event(chunk({"role": "assistant", "content": ""}))
        for piece in self._pieces(reply):
            self._event(chunk({"content": piece}))
        if reply.has_tool:
            self._event(chunk({"tool_calls": [dict(tool_call, index=0)]}))
        self._event(chunk({}, finish, usage=usage))
        self._event("[DONE]")
        self._end_sse()

    # ----------------------------------------------------------------- OpenAI responses

    def _responses(self, body: Json) -> None:
        items = body.get("input", [])
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        turns = [
            i
            for i in items
            if isinstance(i, dict)
            and (
                i.get("role") in ("user", "assistant") or str(i.get("type", "")).endswith("output")
            )
        ]
        last = turns[-1] if turns else {}
        tool_result_last = str(last.get("type", "")).endswith("_output")
        user_texts = [_text_of(i.get("content")) for i in turns if i.get("role") == "user"]
        # After a tool result the last user text is the prompt already answered, not a new one.
        user_text = "" if tool_result_last else _last_user_text(user_texts)
        tools = body.get("tools") or []
        everything = str(body.get("instructions", "")) + "\n" + user_text
        if not tools and TITLE_REQUEST.search(everything):
            reply = Reply("Fake task title", kind="title")
        else:
            reply = script(user_text, tool_result_last=tool_result_last, tools=tools)
        model = str(body.get("model", "fake-model"))
        input_tokens = estimate_tokens(body)
        output_tokens = estimate_tokens(reply.text) + (
            estimate_tokens(reply.tool_args) if reply.has_tool else 0
        )
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        self._log(body, reply, usage)
        resp_id = _new_id("resp_")
        msg_item: Json = {
            "type": "message",
            "id": _new_id("msg_"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
        }
        call_item: Json = {
            "type": "function_call",
            "id": _new_id("fc_"),
            "call_id": _new_id("call_"),
            "name": reply.tool_name,
            "arguments": json.dumps(reply.tool_args),
            "status": "completed",
        }
        output = [msg_item] + ([call_item] if reply.has_tool else [])
        base: Json = {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "status": "in_progress",
            "output": [],
        }
        if not body.get("stream"):
            self._send_json(200, dict(base, status="completed", output=output, usage=usage))
            return
        self._start_sse()
        seq = iter(range(1_000_000))

        def ev(kind: str, **fields: Any) -> None:
            self._event({"type": kind, "sequence_number": next(seq), **fields}, kind)

        ev("response.created", response=base)
        ev("response.in_progress", response=base)
        ev(
            "response.output_item.added",
            output_index=0,
            item=dict(msg_item, status="in_progress", content=[]),
        )
        ev(
            "response.content_part.added",
            item_id=msg_item["id"],
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )
        for piece in self._pieces(reply):
            ev(
                "response.output_text.delta",
                item_id=msg_item["id"],
                output_index=0,
                content_index=0,
                delta=piece,
            )
        ev(
            "response.output_text.done",
            item_id=msg_item["id"],
            output_index=0,
            content_index=0,
            text=reply.text,
        )
        ev(
            "response.content_part.done",
            item_id=msg_item["id"],
            output_index=0,
            content_index=0,
            part=msg_item["content"][0],
        )
        ev("response.output_item.done", output_index=0, item=msg_item)
        if reply.has_tool:
            ev("response.output_item.added", output_index=1, item=call_item)
            ev("response.output_item.done", output_index=1, item=call_item)
        ev(
            "response.completed",
            response=dict(base, status="completed", output=output, usage=usage),
        )
        self._end_sse()

    # ----------------------------------------------------------------- Gemini

    def _gemini(self, body: Json, path: str) -> None:
        contents = [c for c in body.get("contents", []) if isinstance(c, dict)]
        last = contents[-1] if contents else {}
        parts = [p for p in last.get("parts", []) if isinstance(p, dict)]
        tool_result_last = any("functionResponse" in p for p in parts)
        # After a tool result only text sent with it is a new prompt (not the one answered).
        user_texts = [
            str(p["text"])
            for c in ([last] if tool_result_last else contents)
            if c.get("role", "user") == "user"
            for p in c.get("parts", [])
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        user_text = _last_user_text(user_texts)
        declarations: list[Json] = []
        for tool in body.get("tools", []) or []:
            if isinstance(tool, dict):
                declarations.extend(tool.get("functionDeclarations", []) or [])
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if config.get("responseMimeType") == "application/json":
            reply = Reply(json.dumps(synth_from_schema(schema or {})), kind="json")
        else:
            reply = script(user_text, tool_result_last=tool_result_last, tools=declarations)
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        prompt_tokens = estimate_tokens(body)
        out_tokens = estimate_tokens(reply.text) + (
            estimate_tokens(reply.tool_args) if reply.has_tool else 0
        )
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens,
        }
        self._log(body, reply, usage)

        def response(parts_out: list[Json], finish: str | None) -> Json:
            candidate: Json = {"content": {"role": "model", "parts": parts_out}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}

        call_parts: list[Json] = (
            [{"functionCall": {"name": reply.tool_name, "args": reply.tool_args}}]
            if reply.has_tool
            else []
        )
        if ":streamGenerateContent" not in path:
            self._send_json(200, response([{"text": reply.text}, *call_parts], "STOP"))
            return
        self._start_sse()
        for piece in self._pieces(reply):
            self._event(response([{"text": piece}], None))
        self._event(response(call_parts or [{"text": ""}], "STOP"))
        self._end_sse()


# --------------------------------------------------------------------------- entry points


def start_server(
    log_path: Path | str | None = None, *, port: int = 0, word_delay: float = 0.5
) -> tuple[FakeModelServer, int]:
    """Start the server on a daemon thread; returns ``(server, port)``.

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = FakeModelServer(port, Path(log_path) if log_path else None, word_delay)
    thread = threading.Thread(target=server.serve_forever, name="fake-model-server", daemon=True)
    thread.start()
    return server, server.port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick one)")
    parser.add_argument("--log", type=Path, default=None, help="append requests here as JSONL")
    parser.add_argument("--word-delay", type=float, default=0.5, help="seconds per SLOW word")
    args = parser.parse_args(argv)
    server = FakeModelServer(args.port, args.log, args.word_delay)
    print(f"PORT {server.port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
