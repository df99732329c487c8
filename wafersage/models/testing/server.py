"""A real OpenAI-compatible chat server on 127.0.0.1 with injectable latency and faults, for tests and benchmarks.

It serves ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /stats`` (request counts as JSON). Every chat
request ends in one *kind*: ``ok``, ``rate_limit`` (429 with ``Retry-After``), ``server_error`` (500), ``hang``
(no answer for ``hang_s``, past any sane client timeout) or ``truncated`` (status 200 with half a JSON body).

Faults are deterministic for a seed: the kind of the n-th attempt of a given request body is drawn from a hash of
(seed, body, n), so it does not depend on arrival order; :meth:`ChatCompletionsServer.script` forces the kinds of
the next requests instead. Replies come from a ``reply`` function (``payload -> str | dict``; a dict is sent as
JSON text, for judge tests), else ``reply_text``, else an echo of the last user text (JSON ``{"echo": ...}`` when the
request asks for a JSON ``response_format``). A reply function that raises :class:`ReplyStatus` answers that HTTP
error instead (a judge with no grade for an item: 404), counted as ``http_<status>``.

Run it three ways: ``with ChatCompletionsServer(...) as server`` (a background thread), ``async with`` (the current
event loop), or ``python -m wafersage.models.testing.server --port 0 --latency-ms 100`` (prints its base URL).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
import time
from collections import Counter, deque
from typing import Any, Callable, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["rate_limit", "server_error", "hang", "truncated"]
RequestKind = Literal["ok", "rate_limit", "server_error", "hang", "truncated"]
FAULT_KINDS: tuple[FaultKind, ...] = ("rate_limit", "server_error", "hang", "truncated")
TOKENS_PER_IMAGE = 85  # a fixed image cost, like OpenAI's low-detail rule
LISTEN_BACKLOG = 4096

Reply = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class ReplyStatus(Exception):
    """Raised by a reply function: answer the request with this HTTP error status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ServerSettings(BaseModel):
    """How the server behaves; every field can also be set on the command line."""

    model_config = ConfigDict(extra="forbid")
    latency_ms: float = Field(0.0, ge=0, description="delay before every answer (faults included, hangs aside)")
    fault_rate: float = Field(0.0, ge=0, le=1, description="share of chat requests that get a fault")
    fault_mix: dict[FaultKind, float] = Field(
        default_factory=lambda: {kind: 1.0 for kind in FAULT_KINDS},
        description="relative weights of the fault kinds drawn when a fault is injected")
    retry_after_s: float = Field(1.0, ge=0, description="value of the Retry-After header sent with a 429")
    hang_s: float = Field(30.0, ge=0, description="how long a hung request stays silent (then it gets a 503)")
    seed: int = Field(0, description="seed of the fault draws")
    reply_text: str | None = Field(None, description="a fixed answer for every request (when no reply function)")
    keep_payloads: int = Field(100, ge=0, description="how many recent request payloads to keep for inspection")
    api_key: str | None = Field(None, description="when set, a chat request without 'Authorization: Bearer "
                                                  "<api_key>' gets 401 (counted as 'unauthorized')")


def _last_user_text(payload: dict[str, Any]) -> str:
    for message in reversed(payload.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(part.get("text", "") for part in content or [] if part.get("type") == "text")
    return ""


def echo_reply(payload: dict[str, Any]) -> str | dict[str, Any]:
    """The default reply: echo the last user text (as JSON when a JSON response format is asked for)."""
    text = _last_user_text(payload)
    if (payload.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        return {"echo": text}
    return f"echo: {text}"


def _count_prompt_tokens(payload: dict[str, Any]) -> tuple[int, int]:
    """Whitespace words of all text plus a fixed cost per image; returns (tokens, images)."""
    words = images = 0
    for message in payload.get("messages", []):
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if part.get("type") == "image_url":
                images += 1
            else:
                words += len(str(part.get("text", "")).split())
    return words + TOKENS_PER_IMAGE * images, images


class ChatCompletionsServer:
    """The server; ``url`` is the OpenAI ``base_url`` (``http://127.0.0.1:PORT/v1``) once started.

    ``counts`` holds requests per kind (plus ``images``, ``models``, ``bad_request``, ``unauthorized``), ``payloads``
    the recent request bodies, ``last_headers`` the last chat request's headers, ``max_in_flight`` the most chat
    requests held at once.
    """

    def __init__(self, settings: ServerSettings | None = None, *, reply: Reply | None = None, port: int = 0,
                 host: str = "127.0.0.1", **overrides: Any):
        self.settings = (settings or ServerSettings()).model_copy(update=overrides)
        ServerSettings.model_validate(self.settings.model_dump())  # overrides are checked too
        self.reply = reply
        self.host = host  # another local address only for tests of the offline guard
        self.port = port
        self.counts: Counter[str] = Counter()
        self.payloads: deque[dict[str, Any]] = deque(maxlen=self.settings.keep_payloads)
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_headers: dict[str, str] = {}
        self._script: deque[RequestKind] = deque()
        self._attempts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- control -------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def chat_requests(self) -> int:
        return sum(self.counts[kind] for kind in ("ok", *FAULT_KINDS))

    def script(self, kinds: list[RequestKind]) -> None:
        """Force the kinds of the next chat requests (in arrival order), before any random draw."""
        self._script.extend(kinds)

    def stats(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "chat_requests": self.chat_requests, "max_in_flight": self.max_in_flight}

    # ---- request handling ----------------------------------------------------------------------------------------
    def _choose_kind(self, body: bytes) -> RequestKind:
        if self._script:
            return self._script.popleft()
        s = self.settings
        if s.fault_rate <= 0:
            return "ok"
        digest = hashlib.sha256(body).hexdigest()
        attempt = self._attempts[digest]
        self._attempts[digest] += 1
        draw = hashlib.sha256(f"{s.seed}:{digest}:{attempt}".encode()).digest()
        if int.from_bytes(draw[:8], "big") / 2**64 >= s.fault_rate:
            return "ok"
        weights = [(kind, s.fault_mix.get(kind, 0.0)) for kind in FAULT_KINDS]
        point = int.from_bytes(draw[8:16], "big") / 2**64 * sum(w for _, w in weights)
        for kind, weight in weights:
            point -= weight
            if point < 0:
                return kind
        return weights[-1][0]

    def _completion(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.reply(payload) if self.reply else (self.settings.reply_text or echo_reply(payload))
        text = answer if isinstance(answer, str) else json.dumps(answer)
        prompt_tokens, _ = _count_prompt_tokens(payload)
        completion_tokens = len(text.split())
        return {
            "id": f"chatcmpl-{self.chat_requests}", "object": "chat.completion", "created": int(time.time()),
            "model": payload.get("model", "wafersage-test"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @staticmethod
    def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
        body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
        return web.Response(status=status, body=body, content_type="application/json", headers=headers)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
                raise ValueError("a JSON object with a 'messages' list is required")
        except ValueError as exc:
            self.counts["bad_request"] += 1
            return self._error(400, f"invalid request: {exc}", "invalid_request_error")
        self.payloads.append(payload)
        self.last_headers = dict(request.headers)
        key = self.settings.api_key
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            self.counts["unauthorized"] += 1
            return self._error(401, "Incorrect API key provided", "invalid_request_error")
        self.counts["images"] += _count_prompt_tokens(payload)[1]
        kind = self._choose_kind(body)
        self.counts[kind] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if kind == "hang":
                await asyncio.sleep(self.settings.hang_s)
                raise web.HTTPServiceUnavailable()
            if self.settings.latency_ms:
                await asyncio.sleep(self.settings.latency_ms / 1000)
            if kind == "rate_limit":
                return self._error(429, "rate limited (injected)", "rate_limit_exceeded",
                                   {"Retry-After": f"{self.settings.retry_after_s:g}"})
            if kind == "server_error":
                return self._error(500, "internal error (injected)", "server_error")
            try:
                data = json.dumps(self._completion(payload)).encode()
            except ReplyStatus as exc:
                self.counts[f"http_{exc.status}"] += 1
                return self._error(exc.status, exc.message, "reply_error")
            if kind == "truncated":
                data = data[: len(data) // 2]
            return web.Response(body=data, content_type="application/json")
        finally:
            self.in_flight -= 1

    async def _models(self, request: web.Request) -> web.Response:
        self.counts["models"] += 1
        data = {"object": "list", "data": [{"id": "wafersage-test", "object": "model", "owned_by": "wafersage"}]}
        return web.json_response(data)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    async def astart(self) -> "ChatCompletionsServer":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([web.post("/v1/chat/completions", self._chat), web.get("/v1/models", self._models),
                        web.get("/stats", self._stats)])
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=LISTEN_BACKLOG)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the free port the OS picked for port 0
        return self

    async def astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "ChatCompletionsServer":
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def start(self) -> "ChatCompletionsServer":
        """Serve from a background thread with its own event loop; returns once it listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.astart())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.astop())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="chat-completions-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "ChatCompletionsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = a free one)")
    for name, field in ServerSettings.model_fields.items():
        if name == "fault_mix":
            parser.add_argument("--fault-mix", type=json.loads, help=f"JSON object: {field.description}")
            continue
        kind = str if field.default is None else type(field.default)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=field.description)
    args = vars(parser.parse_args(argv))
    port = args.pop("port")
    settings = ServerSettings(**{k: v for k, v in args.items() if v is not None})

    async def serve() -> None:
        server = await ChatCompletionsServer(settings, port=port).astart()
        print(server.url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.astop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
