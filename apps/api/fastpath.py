"""A plain ASGI layer that answers POSTs to the prediction routes directly.

Routing, dependency solving and request/response objects cost more than the prediction
itself on the single-record path; this skips them and calls the same core the FastAPI
routes call (`predict.py`). Everything else falls through to FastAPI. It sits inside the
metrics middleware, so these requests are counted and timed like the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from apps.api.predict import PREDICT_ROUTES, dispatch

Message = MutableMapping[str, Any]
_JSON_HEADERS = (b"content-type", b"application/json")


class PredictFastPath:
    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PREDICT_ROUTES:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        status, payload = await dispatch(scope["app"].state, scope["path"], b"".join(chunks))
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
