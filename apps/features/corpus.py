"""Deterministic synthetic case text: redacted support cases, privacy-related or not.

Used by the batch pipeline's sample source and as the reference corpus the default TF-IDF
vocabulary is fitted on, so sample runs and tests need no external data.
"""

from __future__ import annotations

import numpy as np

REDACTIONS = ["[NAME]", "[EMAIL]", "[PHONE]", "[ADDRESS]", "[ACCOUNT_ID]", "[DOB]"]

_PRIVACY = [
    "please delete all personal data you hold about me {r} under gdpr article 17",
    "i want a copy of every record you keep on {r} subject access request",
    "erase my account {r} and stop processing my personal information",
    "you shared my email {r} with a marketing partner without my consent",
    "i withdraw consent for tracking cookies and profiling of {r}",
    "there was a data breach and my password and {r} were exposed",
    "correct the wrong date of birth {r} stored in my customer profile",
    "why does your privacy policy allow selling data about {r} to third parties",
    "opt me out of data sharing and remove {r} from the mailing list permanently",
    "my medical details {r} appeared in another customer's account portal",
    "request to restrict processing of location history linked to {r}",
    "the ccpa do not sell request for {r} was ignored for forty five days",
]
_OTHER = [
    "my parcel for {r} arrived damaged and the box was open",
    "the invoice for {r} charges twice for the same monthly subscription",
    "how do i reset my password the link sent to {r} expired",
    "the app crashes when i upload a photo from my phone {r}",
    "can i change the delivery address {r} before the order ships",
    "refund request for the cancelled flight booked by {r}",
    "the product manual is missing pages about battery replacement",
    "upgrade my plan to premium and apply the discount code for {r}",
    "the technician did not arrive for the appointment booked by {r}",
    "question about warranty coverage for a cracked screen",
    "the store in the city centre closed early and {r} could not collect the order",
    "integration with the calendar stopped syncing after the last update",
]
_OPENERS = ["hello", "hi team", "urgent", "dear support", "good morning", "to whom it may concern", ""]
_CLOSERS = ["thanks", "regards", "please advise", "this is the second time i ask", "kind regards [NAME]", ""]


def synthetic_cases(n: int, *, seed: int, privacy_ratio: float = 0.35) -> tuple[list[str], np.ndarray]:
    """`n` redacted case texts and their labels (1 = privacy case), the same for the same seed."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < privacy_ratio).astype(np.int64)
    tpl_p = rng.integers(0, len(_PRIVACY), n)
    tpl_o = rng.integers(0, len(_OTHER), n)
    red = rng.integers(0, len(REDACTIONS), n)
    op = rng.integers(0, len(_OPENERS), n)
    cl = rng.integers(0, len(_CLOSERS), n)
    texts = []
    for i in range(n):
        body = (_PRIVACY[tpl_p[i]] if labels[i] else _OTHER[tpl_o[i]]).format(r=REDACTIONS[red[i]])
        texts.append(" ".join(p for p in (_OPENERS[op[i]], body, _CLOSERS[cl[i]]) if p))
    return texts, labels
