"""Limits a public API needs before any route runs: the body's size and type, and slow clients.

`RequestGuard` (ASGI) answers 415 to a body that is not JSON and 413 to one over
MAX_BODY_BYTES, from its Content-Length before reading a byte, or as soon as a chunked body
passes the limit, for the fast path and FastAPI's routes alike. `server_protocol` gives
uvicorn's HTTP protocol a header timeout: a connection that opens and sends nothing (or
half a request) is closed after HEADER_TIMEOUT_S instead of holding a file descriptor forever.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from apps.api.metrics import ROUTES, ApiMetrics

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _TooLarge(Exception):
    pass


class RequestGuard:
    def __init__(self, app: Callable[..., Awaitable[None]], *, max_body_bytes: int, metrics: ApiMetrics) -> None:
        self.app, self.limit, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if media_type != "application/json":
            await self._refuse(scope, send, 415, "media_type",
                               f"Content-Type must be application/json, got {media_type or 'none'}")
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(scope, send, 400, "bad_request", "Content-Length is not a number")
            elif int(declared) > self.limit:
                await self._refuse(scope, send, 413, "too_large", self._too_large(int(declared)))
            else:
                await self.app(scope, receive, send)
            return
        # Chunked: count as the app reads, and stop it at the limit.
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await self._refuse(scope, send, 413, "too_large", self._too_large(received))

    def _too_large(self, size: int) -> str:
        return (f"request body of {size} bytes or more exceeds MAX_BODY_BYTES ({self.limit}); "
                "split the batch")

    async def _refuse(self, scope: MutableMapping[str, Any], send: Send, status: int, kind: str, detail: str) -> None:
        route = scope["path"] if scope["path"] in ROUTES else "other"
        self.metrics.errors.labels(route=route, kind=kind).inc()
        body = json.dumps({"detail": detail}).encode()
        # The rest of the body is never read: the connection closes after the answer.
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def server_protocol(header_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers do not arrive in time."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # nothing sent yet
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:  # a new request on a kept-alive connection
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol
