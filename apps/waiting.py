"""The one waiting helper: poll a probe until it returns a value, with a timeout; no sleeps elsewhere.

It lives in `apps/` (standard library only) so every room that waits may import it: the
harness, and infra's Kubernetes objects, which may not import the harness.

    >>> wait_for(lambda: 42, what="the answer", timeout=1.0)
    42
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(TimeoutError):
    """A condition did not hold within its timeout; says what was last seen."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 60.0,
    interval: float = 0.2,
    transient: tuple[type[BaseException], ...] = (),
    hint: str = "",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something other than None/False; return that.

    `transient` errors count as "not yet" (the last one is reported on timeout). `describe`
    adds the state seen at the deadline (for instance a container's status and log tail).
    """
    deadline = time.monotonic() + timeout
    last: str = "nothing yet"
    while True:
        try:
            value = probe()
        except transient as e:
            last = f"{type(e).__name__}: {e}"
        else:
            if value is not None and value is not False:
                return value
            last = f"probe returned {value!r}"
        if time.monotonic() >= deadline:
            seen = describe() if describe else ""
            parts = [f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last}"]
            if seen:
                parts.append(seen)
            if hint:
                parts.append(f"hint: {hint}")
            raise WaitTimeoutError("\n".join(parts))
        time.sleep(interval)  # the one place that sleeps: the poll interval
