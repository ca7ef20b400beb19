"""The messages between fraud stages (pydantic: unknown keys and bad values are rejected)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["online", "pos", "atm"]
MerchantCategory = Literal["grocery", "travel", "electronics", "fuel", "gambling", "restaurants", "fashion", "crypto"]
MERCHANT_CATEGORIES: tuple[MerchantCategory, ...] = (
    "grocery", "travel", "electronics", "fuel", "gambling", "restaurants", "fashion", "crypto")
CHANNELS: tuple[Channel, ...] = ("online", "pos", "atm")
HOME_COUNTRY = "AU"

FEATURE_NAMES = (
    ["log_amount", "hour_sin", "hour_cos", "foreign", "night", "card_present"]
    + [f"channel_{c}" for c in CHANNELS]
    + [f"merchant_{m}" for m in MERCHANT_CATEGORIES]
)
N_FEATURES = len(FEATURE_NAMES)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transaction(Message):
    """What data-gather emits: one card transaction, with the label a later chargeback would give."""

    transaction_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    amount: float = Field(gt=0, lt=1_000_000)
    currency: Literal["AUD", "USD", "EUR", "GBP"]
    merchant_category: MerchantCategory
    channel: Channel
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timestamp: datetime
    card_present: bool
    # Known later (chargebacks); absent for live traffic.
    is_fraud: bool | None = None
    created_at: float  # epoch seconds when gathered: end-to-end latency is measured from here


class FeatureRow(Message):
    transaction_id: str
    features: list[float] = Field(min_length=N_FEATURES, max_length=N_FEATURES)
    is_fraud: bool | None = None
    created_at: float
    device: Literal["cuda", "cpu"]


class Score(Message):
    transaction_id: str
    fraud_probability: float = Field(ge=0, le=1)
    is_fraud_predicted: bool
    threshold: float
    model_version: str
    backend: str
    device: Literal["cuda", "cpu"]
    created_at: float
    scored_at: float


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def encode_records(messages: Sequence[Message]) -> bytes:
    """One queue message carrying several records: {"records": [...]}.

    Records travel in small batches so the file work (claim, write, commit) is shared by all of
    them; each record is still validated, scored and dead-lettered on its own.
    """
    return b'{"records":[' + b",".join(m.model_dump_json().encode() for m in messages) + b"]}"


def decode_records(payload: bytes) -> list[object]:
    """The raw records of a message; raises ValueError when the message itself is malformed."""
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("records"), list) or set(data) != {"records"}:
        raise ValueError('expected a JSON object {"records": [...]}')
    return data["records"]


def feature_matrix(rows: list[FeatureRow]) -> np.ndarray:
    return np.asarray([r.features for r in rows], dtype=np.float32).reshape(len(rows), N_FEATURES)
