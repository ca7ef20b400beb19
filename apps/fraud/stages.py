"""The four stages of the fraud seed, each a small class over the shared file queue.

    data-gather   -> raw-transactions
    preprocessing    raw-transactions -> features-ready (+ a labelled sample -> training-queue)
    inference        features-ready   -> inference-results (scored with the active model)
    model-build      training-queue   -> a new model version in the registry (promoted if good)
"""

from __future__ import annotations

import time
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import structlog
from pydantic import ValidationError

from apps.fraud import metrics
from apps.fraud.device import DeviceChoice
from apps.fraud.exceptions import PoisonItem
from apps.fraud.queue_interface import Claimed
from apps.fraud.records import (
    CHANNELS,
    FEATURE_NAMES,
    HOME_COUNTRY,
    MERCHANT_CATEGORIES,
    FeatureRow,
    Message,
    Score,
    Transaction,
    decode_records,
    encode_records,
    feature_matrix,
)
from apps.fraud.settings import FraudSettings
from apps.fraud.worker import Outcome

if TYPE_CHECKING:
    from apps.inference import Predictor

M = TypeVar("M", bound=Message)

RAW, FEATURES, RESULTS, TRAINING = "raw-transactions", "features-ready", "inference-results", "training-queue"
log = structlog.get_logger(__name__)

_RISKY = {"gambling", "crypto", "electronics", "travel"}
_COUNTRIES = ("AU", "AU", "AU", "AU", "NZ", "US", "GB", "SG", "NG", "BR")


def synthetic_transactions(n: int, rng: np.random.Generator, *, now: float | None = None) -> list[Transaction]:
    """`n` card transactions, ~15% fraudulent (a rate that lets a demo model learn from a few hundred
    rows): fraud is likelier abroad, at night, online, in risky categories and for large amounts."""
    now = time.time() if now is None else now
    cats = rng.integers(0, len(MERCHANT_CATEGORIES), n)
    chans = rng.integers(0, len(CHANNELS), n)
    countries = rng.integers(0, len(_COUNTRIES), n)
    hours = rng.integers(0, 24, n)
    amounts = np.round(rng.lognormal(3.5, 1.1, n), 2) + 0.01
    risk = (-5.0 + 2.0 * (np.array([_COUNTRIES[c] for c in countries]) != HOME_COUNTRY)
            + 1.6 * ((hours < 5) | (hours > 22)) + 1.2 * (chans == 0)
            + 1.5 * np.isin(cats, [MERCHANT_CATEGORIES.index(m) for m in _RISKY]) + 0.8 * (amounts > 300))
    fraud = rng.random(n) < 1 / (1 + np.exp(-risk))
    out = []
    for i in range(n):
        ts = datetime.fromtimestamp(now, UTC).replace(hour=int(hours[i]), minute=int(rng.integers(0, 60)))
        out.append(Transaction(
            transaction_id=f"tx-{int(now * 1e6)}-{i:05d}-{rng.integers(0, 1 << 30):08x}",
            account_id=f"acct-{rng.integers(0, 50_000):05d}",
            amount=float(amounts[i] * (3 if fraud[i] else 1)),
            currency="AUD", merchant_category=MERCHANT_CATEGORIES[cats[i]], channel=CHANNELS[chans[i]],
            country=_COUNTRIES[countries[i]], timestamp=ts, card_present=bool(chans[i] != 0),
            is_fraud=bool(fraud[i]), created_at=now,
        ))
    return out


def featurize(txs: list[Transaction], xp: Any = np) -> np.ndarray:  # xp: the numpy or cupy module
    """Vectorised features in FEATURE_NAMES order, computed with `xp` (numpy, or cupy on a GPU)."""
    n = len(txs)
    amount = xp.asarray([t.amount for t in txs], dtype=xp.float32)
    hour = xp.asarray([t.timestamp.hour + t.timestamp.minute / 60 for t in txs], dtype=xp.float32)
    foreign = xp.asarray([t.country != HOME_COUNTRY for t in txs], dtype=xp.float32)
    present = xp.asarray([t.card_present for t in txs], dtype=xp.float32)
    chan = xp.zeros((n, len(CHANNELS)), dtype=xp.float32)
    chan[xp.arange(n), xp.asarray([CHANNELS.index(t.channel) for t in txs])] = 1
    merch = xp.zeros((n, len(MERCHANT_CATEGORIES)), dtype=xp.float32)
    merch[xp.arange(n), xp.asarray([MERCHANT_CATEGORIES.index(t.merchant_category) for t in txs])] = 1
    angle = hour * (2 * np.pi / 24)
    night = ((hour < 5) | (hour >= 23)).astype(xp.float32)
    cols = [xp.log1p(amount), xp.sin(angle), xp.cos(angle), foreign, night, present]
    x = xp.concatenate([xp.stack(cols, axis=1), chan, merch], axis=1)
    return np.asarray(x.get() if hasattr(x, "get") else x, dtype=np.float32)


def _sampled(transaction_id: str, rate: float) -> bool:
    # Deterministic per id, so a redone item makes the same choice.
    return zlib.crc32(transaction_id.encode()) % 10_000 < rate * 10_000


def _error(e: ValidationError) -> str:
    first = e.errors()[0]
    return f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"


def parse_records(items: list[Claimed], model: type[M]) -> tuple[list[tuple[int, int, M]], dict[int, Outcome],
                                                                         dict[int, list[tuple[int, str, object]]], dict[int, int]]:
    """Validate every record of every message: (message index, record index, record) for the good
    ones; a whole-message Outcome for malformed messages; per-message rejected records; record counts."""
    good: list[tuple[int, int, M]] = []
    broken: dict[int, Outcome] = {}
    rejected: dict[int, list[tuple[int, str, object]]] = {}
    counts: dict[int, int] = {}
    for m, item in enumerate(items):
        try:
            raw = decode_records(item.payload)
        except ValueError as e:
            broken[m] = Outcome.failed(PoisonItem(f"not a message of {model.__name__} records: {e}"))
            continue
        counts[m] = len(raw)
        for r, record in enumerate(raw):
            try:
                good.append((m, r, model.model_validate(record)))
            except ValidationError as e:
                rejected.setdefault(m, []).append((r, f"not a valid {model.__name__}: {_error(e)}", record))
    return good, broken, rejected, counts


def assemble(items: list[Claimed], broken: dict[int, Outcome], rejected: dict[int, list[tuple[int, str, object]]],
             counts: dict[int, int], outputs: dict[int, dict[str, list[Message]]]) -> list[Outcome]:
    """One Outcome per message: its records regrouped per target queue, bad records noted."""
    result = []
    for m in range(len(items)):
        if m in broken:
            result.append(broken[m])
            continue
        per_target = outputs.get(m, {})
        result.append(Outcome(outputs={t: encode_records(rs) for t, rs in per_target.items() if rs},
                              rejected=rejected.get(m, []), records=counts.get(m, 0)))
    return result


class Preprocessing:
    name = "preprocessing"

    def __init__(self, settings: FraudSettings, device: DeviceChoice) -> None:
        self.settings = settings
        self.device = device
        self.xp = device.array_module()

    def ready(self) -> bool:
        return True

    def process(self, items: list[Claimed]) -> list[Outcome]:
        good, broken, rejected, counts = parse_records(items, Transaction)
        txs = [t for _, _, t in good]
        feats = featurize(txs, self.xp) if txs else np.zeros((0, len(FEATURE_NAMES)), np.float32)
        outputs: dict[int, dict[str, list[Message]]] = {}
        for (m, _, tx), vec in zip(good, feats, strict=True):
            row = FeatureRow(transaction_id=tx.transaction_id, features=vec.tolist(), is_fraud=tx.is_fraud,
                             created_at=tx.created_at, device=self.device.device)
            targets = outputs.setdefault(m, {FEATURES: [], TRAINING: []})
            targets[FEATURES].append(row)
            if tx.is_fraud is not None and _sampled(tx.transaction_id, self.settings.training_sample_rate):
                targets[TRAINING].append(row)
        return assemble(items, broken, rejected, counts, outputs)


class Inference:
    name = "inference"

    def __init__(self, settings: FraudSettings, device: DeviceChoice) -> None:
        from apps.inference import ModelRegistry

        self.settings = settings
        self.device = device
        self.registry = ModelRegistry(settings.registry_uri, endpoint_url=settings.s3_endpoint_url)
        self.predictor: Predictor | None = None
        self._positive = 1
        self._checked = 0.0
        self._waiting_logged = False

    def ready(self) -> bool:
        if time.monotonic() - self._checked >= self.settings.reload_interval_s or self.predictor is None:
            self._checked = time.monotonic()
            self._maybe_reload()
        return self.predictor is not None

    def _maybe_reload(self) -> None:
        from apps.inference import InferenceError, load_runtime

        try:
            active = self.registry.active_version()
            if active is None or (self.predictor is not None and self.predictor.version == active):
                if active is None and not self._waiting_logged:
                    self._waiting_logged = True
                    log.info("waiting_for_model", registry=self.settings.registry_uri)
                return
            predictor = load_runtime(self.registry.load(active), providers=self.device.providers)
        except (InferenceError, OSError) as e:
            log.error("model_load_failed", registry=self.settings.registry_uri, error=str(e),
                      keeping=getattr(self.predictor, "version", None))
            return
        if predictor.schema.n_features != len(FEATURE_NAMES):
            log.error("model_schema_mismatch", version=active, n_features=predictor.schema.n_features,
                      expected=len(FEATURE_NAMES))
            return
        if self.device.device == "cuda" and predictor.device != "cuda":
            log.warning("gpu_unavailable_cpu_fallback", stage=self.name, reason="ONNX Runtime could not use CUDA")
        self._positive = predictor.schema.classes.index(1)
        if self.predictor is not None:
            metrics.MODEL_VERSION.labels(self.name, self.predictor.version, self.predictor.device).set(0)
        self.predictor = predictor
        metrics.MODEL_VERSION.labels(self.name, predictor.version, predictor.device).set(1)
        log.info("model_loaded", version=predictor.version, backend=predictor.backend, device=predictor.device)

    def process(self, items: list[Claimed]) -> list[Outcome]:
        predictor = self.predictor
        assert predictor is not None  # run_consumer only claims once ready()
        good, broken, rejected, counts = parse_records(items, FeatureRow)
        rows = [r for _, _, r in good]
        proba = predictor.predict_proba(feature_matrix(rows))[:, self._positive] if rows else np.zeros(0)
        now = time.time()
        outputs: dict[int, dict[str, list[Message]]] = {}
        threshold = self.settings.fraud_threshold
        for (m, _, row), p in zip(good, proba, strict=True):
            p = float(min(1.0, max(0.0, p)))
            outputs.setdefault(m, {RESULTS: []})[RESULTS].append(Score(
                transaction_id=row.transaction_id, fraud_probability=p, is_fraud_predicted=p >= threshold,
                threshold=threshold, model_version=predictor.version, backend=predictor.backend,
                device=predictor.device, created_at=row.created_at, scored_at=now))
            metrics.END_TO_END.observe(max(0.0, now - row.created_at))
        return assemble(items, broken, rejected, counts, outputs)
