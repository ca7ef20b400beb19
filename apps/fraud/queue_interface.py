"""The queue the fraud stages talk through (the seed's `queue_interface.py`).

Semantics every backend keeps: an item is claimed by one worker at a time under a lease;
a lease that expires (the worker died or stalled) returns the item for another attempt; after
`max_attempts` claims, or at once for a poison item, it goes to dead-letter with the error;
`ack` publishes the item's outputs and removes it as one step, so an item is never lost and
never turns into two results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Claimed:
    """An item held under a lease; `handle` is backend-specific (a file path for the file queue)."""

    queue: str
    item_id: str
    attempt: int
    expires_at: float
    token: str
    payload: bytes
    handle: str


class WorkQueue(Protocol):
    name: str

    def put(self, payload: bytes, *, item_id: str | None = None) -> str: ...
    def claim(self, max_items: int, *, lease_s: float | None = None) -> list[Claimed]: ...
    def renew(self, item: Claimed, *, lease_s: float | None = None) -> Claimed: ...
    def ack(self, item: Claimed, outputs: dict[str, bytes] | None = None) -> bool: ...
    def fail(self, item: Claimed, error: str, *, retry: bool = True) -> str: ...
    def release(self, item: Claimed) -> bool: ...
    def reject_records(self, item: Claimed, rejected: list[tuple[int, str, object]]) -> None: ...
    def reap(self) -> dict[str, int]: ...
    def depth(self) -> dict[str, int]: ...
