"""Feedback: rows after orders (unhappy customers write more, and complain) and feedback-only prospects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.sample_data.purchases import _Orders, _People
from segments.sample_data.vocabulary import _ARCH, _COMMENTS, _DAY, _Calendar, _norm


@dataclass(frozen=True)
class _Feedback:
    """Feedback rows sorted by time; rating/nps -1 = empty."""

    cust: np.ndarray
    sec: np.ndarray
    kind: np.ndarray
    rating: np.ndarray
    nps: np.ndarray
    comment: np.ndarray  # index into the flat comment list, -1 = empty


def _feedback(rng: np.random.Generator, people: _People, orders: _Orders, cal: _Calendar) -> _Feedback:
    """Feedback after orders (unhappy customers write more, and complain), plus feedback-only
    prospects asking questions or answering surveys."""
    unhappy_o = people.unhappy[orders.cust]
    per_order = rng.poisson(np.where(unhappy_o, 0.35, 0.18))
    src = np.repeat(np.arange(len(orders.cust)), per_order)
    cust = orders.cust[src]
    sec = orders.sec[src] + rng.integers(3600, 14 * _DAY, size=len(src))
    fo = np.flatnonzero(people.arch == _ARCH["feedback_only"])
    fo_cust = np.repeat(fo, 1 + rng.poisson(0.8, size=len(fo)))
    fo_sec = rng.integers(0, cal.end_s + 1, size=len(fo_cust))
    buyer = np.concatenate([np.ones(len(cust), bool), np.zeros(len(fo_cust), bool)])
    cust = np.concatenate([cust, fo_cust])
    sec = np.concatenate([sec, fo_sec])
    keep = sec <= cal.end_s
    cust, sec, buyer = cust[keep], sec[keep], buyer[keep]
    srt = np.lexsort((cust, sec))
    cust, sec, buyer = cust[srt], sec[srt], buyer[srt]
    n = len(cust)
    unhappy = people.unhappy[cust]

    kind = np.where(
        unhappy,
        rng.choice(4, size=n, p=[0.20, 0.25, 0.35, 0.20]),
        rng.choice(4, size=n, p=[0.35, 0.50, 0.05, 0.10]),
    )
    kind = np.where(buyer, kind, rng.choice(4, size=n, p=[0.45, 0.0, 0.10, 0.45]))
    u = rng.random(n)
    has_rating = np.choose(kind, [u < 0.5, u < 1.0, u < 0.3, u < 0.4])
    rating = 1 + np.where(
        unhappy | (kind == 2),
        rng.choice(5, size=n, p=[0.30, 0.30, 0.25, 0.10, 0.05]),
        rng.choice(5, size=n, p=[0.02, 0.03, 0.10, 0.35, 0.50]),
    )
    rating = np.where(has_rating, rating, -1)
    v = rng.random(n)
    has_nps = np.choose(kind, [v < 0.9, v < 0.05, v < 0.0, v < 0.0])
    nps = np.where(
        unhappy,
        rng.choice(11, size=n, p=_norm([6, 6, 7, 8, 9, 10, 10, 6, 4, 2, 1])),
        rng.choice(11, size=n, p=_norm([1, 1, 1, 1, 1, 2, 3, 8, 14, 18, 20])),
    )
    nps = np.where(has_nps, nps, -1)
    w = rng.random(n)
    has_comment = np.choose(kind, [w < 0.3, w < 0.8, w < 1.0, w < 0.9])
    has_comment |= (rating < 0) & (nps < 0)  # the contract needs one of rating, nps, comment
    # Sentiment of the comment: 0 positive, 1 neutral, 2 negative.
    sentiment = np.where(unhappy, 2, 1)
    sentiment = np.where(nps >= 0, np.where(nps >= 9, 0, np.where(nps <= 6, 2, 1)), sentiment)
    sentiment = np.where(rating >= 0, np.where(rating >= 4, 0, np.where(rating <= 2, 2, 1)), sentiment)
    sentiment = np.where(kind == 2, 2, sentiment)
    sizes = np.array([len(v) for v in _COMMENTS.values()])
    offsets = np.cumsum(sizes) - sizes
    comment = offsets[sentiment] + (rng.random(n) * sizes[sentiment]).astype(np.int64)
    comment = np.where(has_comment, comment, -1)
    return _Feedback(cust, sec, kind, rating, nps, comment)
