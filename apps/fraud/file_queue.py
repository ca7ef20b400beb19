"""The file queue: items are files on a shared volume, moved between state folders by rename.

Layout under `<root>/queue/<name>/`:

    pending/<id>~<attempts>.json                        waiting; attempts = claims so far
    processing/<id>~<attempt>~<expires_ms>~<token>.json  claimed under a lease
    committing/<id>~<attempt>~<deadline_ms>~<token>.json outputs being published
    staged/<id>~<token>.json                             an output written, not yet visible
    dead-letter/<id>~<token>.json (+ .error.json)        given up, with the reason
    dead-letter/<id>~r<index>.error.json                 one bad record of a message, with the reason

Why it is safe with several workers (and hosts) on one POSIX volume: `rename` is atomic and
fails for all but one caller once the source name is gone. A claim renames pending -> processing
(one winner); the lease expiry is part of the name, so any worker can see an expired lease and
return it; renewal, commit and failure each rename the worker's own lease name, so a worker
whose lease was taken over fails that rename and drops its work. A commit first writes the
outputs as `staged` files, then renames its lease to `committing` (the point of no return),
then renames each staged file into its target's `pending`: each staged file can be renamed
once only, and a crash at any step is finished by `reap` from the names alone. So no item is
lost and none is published twice.

    >>> q = FileQueue(Path("/tmp/q"), "raw-transactions", lease_s=30, max_attempts=3)
    >>> q.put(b'{"amount": 12.5}')                       # doctest: +SKIP
    >>> [item] = q.claim(1); q.ack(item, {"features-ready": b"..."})   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from apps.fraud.exceptions import LeaseLost, QueueError
from apps.fraud.queue_interface import Claimed

STATES = ("pending", "processing", "committing", "staged", "dead-letter")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # no '~' (the name separator), no glob characters
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"


def new_item_id() -> str:
    """Sortable by creation time, unique across hosts and processes."""
    return f"{time.time_ns():019d}-{secrets.token_hex(4)}"


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


class FileQueue:
    """One named queue under `<root>/queue/`; safe for many worker processes on one volume."""

    def __init__(self, root: Path, name: str, *, lease_s: float, max_attempts: int,
                 clock: Callable[[], float] = time.time) -> None:
        if not _NAME.match(name):
            raise QueueError(f"queue name {name!r}: expected lowercase letters, digits and '-'")
        if lease_s <= 0 or max_attempts < 1:
            raise QueueError(f"queue {name}: expected lease_s > 0 and max_attempts >= 1, got {lease_s}, {max_attempts}")
        self.root = Path(root)
        self.name = name
        self.lease_s = float(lease_s)
        self.max_attempts = int(max_attempts)
        self.dir = self.root / "queue" / name
        self._clock = clock
        self._pid = os.getpid()
        self._ensured: set[Path] = set()
        try:
            for state in STATES:
                self._dir(self.dir, state)
        except OSError as e:
            raise QueueError(f"cannot create queue folders under {self.dir} ({e.strerror}); is the volume mounted "
                             "and writable by uid 10001?") from e

    # ------------------------------------------------------------------ helpers

    def _dir(self, queue_dir: Path, state: str) -> Path:
        path = queue_dir / state
        if path not in self._ensured:
            path.mkdir(parents=True, exist_ok=True)
            self._ensured.add(path)
        return path

    def _token(self) -> str:
        return f"{_HOST}.{os.getpid()}.{secrets.token_hex(4)}"

    def _ms(self, seconds_from_now: float) -> int:
        return int((self._clock() + seconds_from_now) * 1000)

    @staticmethod
    def _names(folder: Path) -> list[str]:
        try:
            return [e.name for e in os.scandir(folder) if e.name.endswith(".json") and not e.name.startswith(".")]
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------------ producing

    def put(self, payload: bytes, *, item_id: str | None = None) -> str:
        """Make an item visible in `pending` atomically (written aside, then renamed in)."""
        item_id = item_id or new_item_id()
        if not _ITEM_ID.match(item_id):
            raise QueueError(f"item id {item_id!r}: expected letters, digits, '.', '_' and '-' (at most 200)")
        staged = self._dir(self.dir, "staged") / f"{item_id}~put-{self._token()}.json"
        _write(staged, payload)
        os.rename(staged, self.dir / "pending" / f"{item_id}~0.json")
        return item_id

    # ------------------------------------------------------------------ consuming

    def claim(self, max_items: int, *, lease_s: float | None = None) -> list[Claimed]:
        lease = self.lease_s if lease_s is None else lease_s
        names = sorted(self._names(self.dir / "pending"))
        # Oldest first, shuffled within a window so concurrent workers rarely race for one file.
        window = names[: max(max_items * 4, 16)]
        random.shuffle(window)
        claimed: list[Claimed] = []
        for name in window:
            try:
                item_id, attempts_s = name[:-5].split("~")
                attempt = int(attempts_s) + 1
            except ValueError:
                continue  # not ours; left alone
            expires_ms = self._ms(lease)
            token = self._token()
            dst = self.dir / "processing" / f"{item_id}~{attempt}~{expires_ms}~{token}.json"
            try:
                os.rename(self.dir / "pending" / name, dst)
                payload = dst.read_bytes()
            except FileNotFoundError:
                continue  # another worker won the rename
            claimed.append(Claimed(self.name, item_id, attempt, expires_ms / 1000, token, payload, str(dst)))
            if len(claimed) >= max_items:
                break
        return claimed

    def renew(self, item: Claimed, *, lease_s: float | None = None) -> Claimed:
        """Extend the lease; raises LeaseLost if it already expired and was taken over."""
        expires_ms = self._ms(self.lease_s if lease_s is None else lease_s)
        dst = self.dir / "processing" / f"{item.item_id}~{item.attempt}~{expires_ms}~{item.token}.json"
        try:
            os.rename(item.handle, dst)
        except FileNotFoundError:
            raise LeaseLost(f"queue {self.name}: lease on item {item.item_id} (attempt {item.attempt}) expired and "
                            "was taken over; raise LEASE_S if items legitimately take this long") from None
        return Claimed(item.queue, item.item_id, item.attempt, expires_ms / 1000, item.token, item.payload, str(dst))

    def ack(self, item: Claimed, outputs: dict[str, bytes] | None = None) -> bool:
        """Publish `outputs` (target queue name -> payload, same item id) and remove the item.

        Returns False, publishing nothing, when the lease was lost (another worker owns the item).
        """
        staged: list[tuple[Path, Path]] = []
        for target, data in (outputs or {}).items():
            if not _NAME.match(target):
                raise QueueError(f"output queue name {target!r}: expected lowercase letters, digits and '-'")
            tdir = self.root / "queue" / target
            path = self._dir(tdir, "staged") / f"{item.item_id}~{item.token}.json"
            _write(path, data)
            staged.append((path, self._dir(tdir, "pending") / f"{item.item_id}~0.json"))
        commit = self.dir / "committing" / f"{item.item_id}~{item.attempt}~{self._ms(self.lease_s)}~{item.token}.json"
        try:
            os.rename(item.handle, commit)
        except FileNotFoundError:
            for path, _ in staged:
                path.unlink(missing_ok=True)
            return False
        for src, dst in staged:
            try:
                os.rename(src, dst)
            except FileNotFoundError:
                pass  # a reaper finished this commit first
        commit.unlink(missing_ok=True)
        return True

    def release(self, item: Claimed) -> bool:
        """Hand an item back untouched (a worker stopping): pending again, the attempt not counted."""
        try:
            os.rename(item.handle, self.dir / "pending" / f"{item.item_id}~{item.attempt - 1}.json")
        except FileNotFoundError:
            return False
        return True

    def fail(self, item: Claimed, error: str, *, retry: bool = True) -> str:
        """Return the item for another attempt, or dead-letter it; says where it went."""
        if retry and item.attempt < self.max_attempts:
            try:
                os.rename(item.handle, self.dir / "pending" / f"{item.item_id}~{item.attempt}.json")
            except FileNotFoundError:
                return "lease-lost"
            return "pending"
        return self._dead_letter(Path(item.handle), item.item_id, item.token, item.attempt, error)

    def reject_records(self, item: Claimed, rejected: list[tuple[int, str, object]]) -> None:
        """Dead-letter single records of a message (index, error, record) while the rest goes on.

        Written before the message is acked, under names fixed by item id and index: a redo of
        the message after a crash rewrites the same notes, so no record is noted twice.
        """
        dl = self.dir / "dead-letter"
        for index, error, record in rejected:
            note = {"queue": self.name, "item_id": item.item_id, "record_index": index, "attempts": item.attempt,
                    "error": error, "record": record, "dead_lettered_at": self._clock()}
            tmp = self.dir / "staged" / f"{item.item_id}~r{index}-{item.token}.note"
            _write(tmp, json.dumps(note, sort_keys=True, default=str).encode())
            os.replace(tmp, dl / f"{item.item_id}~r{index}.error.json")

    def _dead_letter(self, src: Path, item_id: str, token: str, attempt: int, error: str) -> str:
        dl = self.dir / "dead-letter"
        note = dl / f"{item_id}~{token}.error.json"
        _write(note, json.dumps({"queue": self.name, "item_id": item_id, "attempts": attempt, "error": error,
                                 "dead_lettered_at": self._clock()}, sort_keys=True).encode())
        try:
            os.rename(src, dl / f"{item_id}~{token}.json")
        except FileNotFoundError:
            note.unlink(missing_ok=True)
            return "lease-lost"
        return "dead-letter"

    # ------------------------------------------------------------------ recovery

    def reap(self) -> dict[str, int]:
        """Return expired leases, finish interrupted commits, drop orphaned staged outputs."""
        counts = {"requeued": 0, "dead_lettered": 0, "commits_finished": 0, "orphans_removed": 0}
        now_ms = self._ms(0)
        for name in self._names(self.dir / "processing"):
            try:
                item_id, attempt_s, expires_s, token = name[:-5].split("~")
                attempt, expires = int(attempt_s), int(expires_s)
            except ValueError:
                continue
            if expires > now_ms:
                continue
            src = self.dir / "processing" / name
            if attempt >= self.max_attempts:
                where = self._dead_letter(src, item_id, token, attempt,
                                          f"lease expired on all {attempt} attempts: the worker died or exceeded "
                                          f"the {self.lease_s:g}s lease each time")
                counts["dead_lettered"] += where == "dead-letter"
                continue
            try:
                os.rename(src, self.dir / "pending" / f"{item_id}~{attempt}.json")
                counts["requeued"] += 1
            except FileNotFoundError:
                pass  # renewed, committed or reaped meanwhile
        for name in self._names(self.dir / "committing"):
            try:
                item_id, _, deadline_s, token = name[:-5].split("~")
                deadline = int(deadline_s)
            except ValueError:
                continue
            if deadline > now_ms:
                continue
            for src in self.root.glob(f"queue/*/staged/{item_id}~{token}.json"):
                try:
                    os.rename(src, src.parent.parent / "pending" / f"{item_id}~0.json")
                except FileNotFoundError:
                    pass
            (self.dir / "committing" / name).unlink(missing_ok=True)
            counts["commits_finished"] += 1
        counts["orphans_removed"] = self._remove_orphans()
        return counts

    def _remove_orphans(self) -> int:
        """Staged outputs of a worker that died before committing (its item was redone under a new token).

        Every queue's `staged` folder is swept, not only this one's: a worker stages into its
        *target* queues, and a target no stage consumes (inference-results) has no reaper of its own.
        """
        cutoff = self._clock() - 2 * self.lease_s
        old: list[Path] = []
        for staged_dir in (self.root / "queue").glob("*/staged"):
            for name in self._names(staged_dir):
                try:
                    if (staged_dir / name).stat().st_mtime < cutoff:
                        old.append(staged_dir / name)
                except FileNotFoundError:
                    continue
        if not old:
            return 0
        live: set[str] = set()
        for qdir in (self.root / "queue").iterdir():
            for state in ("processing", "committing"):
                live.update(n[:-5].rsplit("~", 1)[-1] for n in self._names(qdir / state))
        removed = 0
        for path in old:
            token = path.name[:-5].split("~", 1)[1]
            if token.startswith("put-") or token not in live:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    # ------------------------------------------------------------------ inspection

    def depth(self) -> dict[str, int]:
        """Files per state; `dead-letter` counts error notes (whole messages and single records)."""
        counts = {state: len(self._names(self.dir / state)) for state in STATES}
        counts["dead-letter"] = sum(1 for n in self._names(self.dir / "dead-letter") if n.endswith(".error.json"))
        return counts

    def dead_letters(self) -> list[dict]:
        """The error notes of dead-lettered items (queue, item_id, attempts, error)."""
        notes = []
        for name in sorted(self._names(self.dir / "dead-letter")):
            if name.endswith(".error.json"):
                try:
                    notes.append(json.loads((self.dir / "dead-letter" / name).read_text()))
                except (FileNotFoundError, ValueError):
                    continue
        return notes

    def pending_payloads(self) -> list[tuple[str, bytes]]:
        """(item id, payload) of every pending item, oldest first: for consumers outside the stages."""
        out = []
        for name in sorted(self._names(self.dir / "pending")):
            try:
                out.append((name.split("~", 1)[0], (self.dir / "pending" / name).read_bytes()))
            except FileNotFoundError:
                continue
        return out
