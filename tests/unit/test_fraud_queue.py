"""The file queue: claims, leases, retries, dead-letter, and exactly-once publication."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from apps.fraud import file_queue as fq_module
from apps.fraud.exceptions import LeaseLost, QueueError
from apps.fraud.file_queue import FileQueue



class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make(root: Path, name: str = "raw", clock: Clock | None = None, **kw) -> FileQueue:
    return FileQueue(root, name, lease_s=kw.pop("lease_s", 10), max_attempts=kw.pop("max_attempts", 3),
                     clock=clock or Clock(), **kw)


def test_put_claim_ack_moves_the_item_to_the_target_once(tmp_path: Path) -> None:
    raw, out = make(tmp_path, "raw"), make(tmp_path, "out")
    item_id = raw.put(b'{"n": 1}')
    [item] = raw.claim(10)
    assert (item.item_id, item.attempt, item.payload) == (item_id, 1, b'{"n": 1}')
    assert raw.claim(10) == []  # claimed items are invisible to others
    assert raw.ack(item, {"out": b'{"n": 2}'})
    assert raw.depth() == {"pending": 0, "processing": 0, "committing": 0, "staged": 0, "dead-letter": 0}
    assert out.pending_payloads() == [(item_id, b'{"n": 2}')]


def test_an_expired_lease_returns_the_item_and_counts_the_attempt(tmp_path: Path) -> None:
    clock = Clock()
    q = make(tmp_path, clock=clock, lease_s=10, max_attempts=2)
    q.put(b"x")
    [first] = q.claim(1)
    clock.now += 5
    assert q.reap()["requeued"] == 0  # lease still valid
    clock.now += 6
    assert q.reap()["requeued"] == 1
    [second] = q.claim(1)
    assert second.attempt == 2
    clock.now += 11
    assert q.reap()["dead_lettered"] == 1  # second expiry of two allowed attempts
    [note] = q.dead_letters()
    assert note["attempts"] == 2 and "lease expired on all 2 attempts" in note["error"]
    assert q.depth()["dead-letter"] == 1 and q.depth()["pending"] == 0


def test_a_worker_whose_lease_was_taken_over_publishes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    raw, out = make(tmp_path, "raw", clock), make(tmp_path, "out", clock)
    raw.put(b"x")
    [stale] = raw.claim(1)
    clock.now += 11
    raw.reap()
    [fresh] = raw.claim(1)
    with pytest.raises(LeaseLost, match="LEASE_S"):
        raw.renew(stale)
    assert raw.ack(stale, {"out": b"from the stale worker"}) is False
    assert raw.ack(fresh, {"out": b"from the new owner"}) is True
    assert [p for _, p in out.pending_payloads()] == [b"from the new owner"]
    assert out.depth()["staged"] == 0


def test_renewal_keeps_a_slow_item_from_being_reaped(tmp_path: Path) -> None:
    clock = Clock()
    q = make(tmp_path, clock=clock)
    q.put(b"x")
    [item] = q.claim(1)
    clock.now += 8
    item = q.renew(item)
    clock.now += 8
    assert q.reap()["requeued"] == 0
    assert q.ack(item)


def test_retry_then_dead_letter_with_the_error(tmp_path: Path) -> None:
    q = make(tmp_path, max_attempts=2)
    q.put(b"x")
    [a] = q.claim(1)
    assert q.fail(a, "ValueError: bad amount") == "pending"
    [b] = q.claim(1)
    assert b.attempt == 2
    assert q.fail(b, "ValueError: bad amount") == "dead-letter"
    assert q.dead_letters()[0]["error"] == "ValueError: bad amount"


def test_poison_goes_straight_to_dead_letter(tmp_path: Path) -> None:
    q = make(tmp_path, max_attempts=5)
    q.put(b"not json")
    [a] = q.claim(1)
    assert q.fail(a, "PoisonItem: not a transaction", retry=False) == "dead-letter"
    assert q.dead_letters()[0]["attempts"] == 1


def test_a_crash_after_the_commit_point_is_finished_by_reap(tmp_path: Path, monkeypatch) -> None:
    clock = Clock()
    raw, out, audit = make(tmp_path, "raw", clock), make(tmp_path, "out", clock), make(tmp_path, "audit", clock)
    raw.put(b"x")
    [item] = raw.claim(1)
    real_rename = os.rename

    class Crash(BaseException):
        pass

    def crash_after_commit(src, dst):
        real_rename(src, dst)
        if "/committing/" in str(dst):
            raise Crash  # the process dies right after its point of no return

    monkeypatch.setattr(fq_module.os, "rename", crash_after_commit)
    with pytest.raises(Crash):
        raw.ack(item, {"out": b"y", "audit": b"z"})
    monkeypatch.setattr(fq_module.os, "rename", real_rename)
    assert raw.depth()["committing"] == 1 and out.depth()["pending"] == 0
    assert raw.reap()["commits_finished"] == 0  # the owner may still be finishing
    clock.now += 11
    assert raw.reap()["commits_finished"] == 1
    assert raw.reap()["commits_finished"] == 0
    assert [p for _, p in out.pending_payloads()] == [b"y"] and [p for _, p in audit.pending_payloads()] == [b"z"]
    assert raw.depth()["processing"] == raw.depth()["pending"] == 0


def test_orphaned_staged_outputs_are_removed(tmp_path: Path) -> None:
    clock = Clock()
    raw, out = make(tmp_path, "raw", clock), make(tmp_path, "out", clock)
    orphan = out.dir / "staged" / "item-1~deadworker.1.abcd.json"
    orphan.write_bytes(b"half done")
    os.utime(orphan, (clock.now - 100, clock.now - 100))
    assert out.reap()["orphans_removed"] == 1 and not orphan.exists()
    assert raw.depth()["staged"] == 0


def test_staged_outputs_in_a_queue_no_stage_consumes_are_reaped_by_the_producer(tmp_path: Path) -> None:
    clock = Clock()
    features, results = make(tmp_path, "features", clock), make(tmp_path, "results", clock)
    features.put(b"rows")
    [item] = features.claim(1)
    # The worker staged its output into `results`, then died before committing.
    staged = results.dir / "staged" / f"{item.item_id}~{item.token}.json"
    staged.write_bytes(b"scores")
    os.utime(staged, (clock.now - 3 * features.lease_s,) * 2)  # old enough to be an orphan...
    assert features.reap()["orphans_removed"] == 0 and staged.exists()  # ...but its worker's lease is live
    clock.now += 2 * features.lease_s  # the worker is gone: its lease expires
    counts = features.reap()  # nothing ever reaps `results` itself: the producing queue does
    assert counts["requeued"] == 1 and counts["orphans_removed"] == 1 and not staged.exists()
    assert results.depth()["staged"] == results.depth()["pending"] == 0


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(QueueError, match="lowercase"):
        make(tmp_path, "Raw_Transactions")
    with pytest.raises(QueueError, match="item id 'a~1'"):
        make(tmp_path).put(b"x", item_id="a~1")


def _worker(root: str, n_claims: int, out: mp.Queue) -> None:
    q = FileQueue(Path(root), "raw", lease_s=30, max_attempts=3)
    done = 0
    while True:
        items = q.claim(n_claims)
        if not items:
            break
        for item in items:
            done += q.ack(item, {"out": item.payload})
    out.put(done)


def test_concurrent_workers_process_each_item_exactly_once(tmp_path: Path) -> None:
    raw = FileQueue(tmp_path, "raw", lease_s=30, max_attempts=3)
    ids = [raw.put(json.dumps({"i": i}).encode()) for i in range(600)]
    results: mp.Queue = mp.Queue()
    procs = [mp.get_context("fork").Process(target=_worker, args=(str(tmp_path), 8, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    counts = [results.get(timeout=5) for _ in procs]
    assert sum(counts) == 600
    published = FileQueue(tmp_path, "out", lease_s=30, max_attempts=3).pending_payloads()
    assert sorted(i for i, _ in published) == sorted(ids)  # every item, none twice
    assert sorted(json.loads(p)["i"] for _, p in published) == list(range(600))
    assert raw.depth() == {"pending": 0, "processing": 0, "committing": 0, "staged": 0, "dead-letter": 0}


def test_a_stopping_worker_hands_items_back_without_spending_an_attempt(tmp_path: Path) -> None:
    q = make(tmp_path, max_attempts=1)
    q.put(b"x")
    [item] = q.claim(1)
    assert q.release(item)
    [again] = q.claim(1)
    assert again.attempt == 1  # one attempt allowed, still available after the release
