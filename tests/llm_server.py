"""A scripted OpenAI-compatible chat server for the LLM tests (standard library only).

`ScriptedServer` answers POST /v1/chat/completions on 127.0.0.1 with a free port. Each
request takes the next `Action` from its script (a list, consumed in order; then the
`default`), or the action a callable returns for the request body. Actions say what to
send: a reply text, a status code, a delay, a dropped connection, a broken body.

Every request is kept in `requests` (body and headers), so tests can check what the
client sent. `hold()` keeps answers back until `release()`, so a test can see requests
in flight without timing anything. `stop()` also closes connections still open, as an
endpoint that dies.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FINGERPRINT = "fp_scripted_1"


@dataclass(frozen=True)
class Action:
    """What the server does for one request."""

    text: str | None = "EXPR: x0"
    status: int = 200
    delay: float = 0.0  # seconds before answering
    headers: tuple[tuple[str, str], ...] = ()
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted from text
    finish_reason: str = "stop"
    body: bytes | None = None  # raw body instead of a chat completion
    content_type: str = "application/json"
    drop: bool = False  # close the connection without an answer
    fingerprint: str | None = FINGERPRINT


def reply(*lines: str, delay: float = 0.0, usage: tuple[int, int] | None = None,
          finish_reason: str = "stop") -> Action:
    """A reply whose text is `lines` joined by newlines."""
    return Action(text="\n".join(lines), delay=delay, usage=usage, finish_reason=finish_reason)


def exprs(*texts: str, delay: float = 0.0, usage: tuple[int, int] | None = None) -> Action:
    """A well-formed reply: one `EXPR:` line per text."""
    return reply(*(f"EXPR: {t}" for t in texts), delay=delay, usage=usage)


def status(code: int, *, retry_after: float | None = None, delay: float = 0.0) -> Action:
    headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
    body = json.dumps({"error": {"message": f"scripted {code}", "type": "scripted",
                                 "code": code}}).encode()
    return Action(text=None, status=code, headers=headers, body=body, delay=delay)


def drop(delay: float = 0.0) -> Action:
    return Action(text=None, drop=True, delay=delay)


def malformed() -> Action:
    """Status 200 whose body is not JSON."""
    return Action(text=None, body=b'{"id": "cmpl", "choices": [ {"mess', delay=0.0)


def no_choices() -> Action:
    """Valid JSON that is not a chat completion."""
    return Action(text=None, body=json.dumps({"object": "chat.completion", "choices": []})
                  .encode())


def empty() -> Action:
    return Action(text="")


Script = Sequence[Action] | Callable[[dict[str, Any]], Action]


@dataclass
class Seen:
    """One request as the server received it."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def prompt(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []))


@dataclass
class ScriptedServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 that follows a script."""

    script: Script = ()
    default: Action = field(default_factory=lambda: exprs("x0"))
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue = list(self.script) if not callable(self.script) else []
        self._stopping = threading.Event()
        self._gate = threading.Event()  # set: answer; clear: hold every answer
        self._gate.set()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ScriptedServer:
        handler = _handler_for(self)
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (an endpoint that dies)."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() first"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.requests)

    def hold(self) -> None:
        """Keep every answer waiting until `release()` (requests are still received)."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def push(self, *actions: Action) -> None:
        """Append actions to the script."""
        with self._lock:
            self._queue.extend(actions)

    # ------------------------------------------------------------------ answering
    def _next_action(self, body: dict[str, Any], headers: dict[str, str]) -> Action:
        with self._lock:
            self.requests.append(Seen(body, headers))
            if callable(self.script):
                return self.script(body)
            return self._queue.pop(0) if self._queue else self.default


class _QuietServer(ThreadingHTTPServer):
    """Connections cut by the client or by `stop()` are expected: no traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def completion(action: Action, body: dict[str, Any], n: int) -> bytes:
    text = action.text or ""
    if action.usage is not None:
        prompt_tokens, completion_tokens = action.usage
    else:
        prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(text) // 4 + 1
    return json.dumps({
        "id": f"chatcmpl-scripted-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model", "scripted"),
        "system_fingerprint": action.fingerprint,
        "choices": [{"index": 0, "finish_reason": action.finish_reason,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }).encode()


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            with server._lock:
                server._connections.add(self.connection)
            try:
                self._answer()
            finally:
                with server._lock:
                    server._connections.discard(self.connection)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self.send_error(404, "only /v1/chat/completions is scripted")
                return
            body = json.loads(raw or b"{}")
            action = server._next_action(body, {k.lower(): v for k, v in self.headers.items()})
            n = server.hits
            while not server._gate.wait(0.02):
                if server._stopping.is_set():
                    return
            if action.delay and server._stopping.wait(action.delay):
                return  # the server stopped while this reply was pending
            if action.drop:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            payload = action.body if action.body is not None else completion(action, body, n)
            self.send_response(action.status)
            self.send_header("Content-Type", action.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in action.headers:
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

    return Handler


# ---------------------------------------------------------------------- test helpers


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)

KEY_ENV = "HG_TEST_LLM_KEY"


def llm_config(base_url: str, **fields: Any) -> Any:
    """An LLMConfig for tests: fast retries, short timeouts, the test key variable."""
    from hybrid_gp.llm import LLMConfig

    defaults: dict[str, Any] = {"model": "scripted-model", "base_url": base_url,
                                "api_key_env": KEY_ENV, "timeout": 2.0, "backoff": 0.01,
                                "backoff_max": 0.05, "retries": 2, "k": 3}
    return LLMConfig(**{**defaults, **fields})
