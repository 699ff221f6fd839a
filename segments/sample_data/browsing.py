"""Browsing sessions and their events: checkout sessions before orders, buyers' and browsers' own
sessions, anonymous traffic and ids unknown to the customer file.

Events are generated in fixed-size blocks of sessions (``sessions_per_block``, passed in by
``generate``) so memory stays bounded at any scale; the block size is part of the deterministic output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.sample_data.purchases import _Orders, _People, _Segments
from segments.sample_data.vocabulary import _ARCH, _CATEGORY_WEIGHTS, _DAY, CATEGORIES, _Calendar, _norm, _time_of_day


@dataclass(frozen=True)
class _Events:
    """Browsing events in file order (time, then session layout); cust -1 = anonymous."""

    cust: np.ndarray
    session: np.ndarray  # session number (0-based, in order of session start)
    sec: np.ndarray
    etype: np.ndarray
    cat: np.ndarray  # -1 = no category
    duration: np.ndarray
    device: np.ndarray
    session_start: np.ndarray  # per session (clipped at 0), for signup dates
    session_cust: np.ndarray
    session_count: int


def _browsing(
    rng: np.random.Generator,
    people: _People,
    segments: _Segments,
    orders: _Orders,
    cal: _Calendar,
    sessions_per_block: int,
) -> _Events:
    """Sessions tied to purchases (checkout just before online orders), buyers' and browsers' own
    sessions, anonymous traffic (~15 % of events) and a few ids unknown to the customer file; events
    are drawn ``sessions_per_block`` sessions at a time."""
    d = cal.last_day
    n_cust = len(people.arch)
    # kinds: 0 identified, 1 checkout before an order, 2 anonymous
    s_cust: list[np.ndarray] = []
    s_kind: list[np.ndarray] = []
    s_start: list[np.ndarray] = []
    s_order: list[np.ndarray] = []

    def windowed(cust: np.ndarray, lo: np.ndarray, hi: np.ndarray, count: np.ndarray) -> None:
        c = np.repeat(cust, count)
        lo_r = np.repeat(lo, count)
        day = lo_r + (rng.random(len(c)) * (np.repeat(hi, count) - lo_r + 1)).astype(np.int64)
        s_cust.append(c)
        s_kind.append(np.zeros(len(c), dtype=np.int64))
        s_start.append(day * _DAY + _time_of_day(rng, len(c)))
        s_order.append(np.full(len(c), -1))

    # 1. Checkout sessions right before most online/app orders.
    co = np.flatnonzero((orders.channel != 1) & (rng.random(len(orders.cust)) < 0.85))
    s_cust.append(orders.cust[co])
    s_kind.append(np.ones(len(co), dtype=np.int64))
    s_start.append(np.zeros(len(co), dtype=np.int64))  # set once the session length is known
    s_order.append(co)
    # 2. Buyers browse more: sessions around their purchase windows, about one per order.
    seg_cust, seg_lo, seg_hi, seg_n = segments
    count = rng.poisson(1.0 * seg_n + 0.3)
    windowed(seg_cust, np.clip(seg_lo - 14, 0, None), np.clip(seg_hi + 3, None, d), count)
    # 3. Browse-only customers: several sessions, never a checkout.
    bo = np.flatnonzero(people.arch == _ARCH["browse_only"])
    lo = rng.integers(0, max(1, d - 6), size=len(bo))
    windowed(bo, lo, np.full(len(bo), d), 1 + rng.poisson(5, size=len(bo)))
    # 4. Ids the customer file does not know (another system's members).
    n_ghost = max(1, n_cust // 400)
    ghosts = np.arange(n_cust, n_cust + n_ghost)
    windowed(ghosts, np.zeros(n_ghost, np.int64), np.full(n_ghost, d), 1 + rng.poisson(2, size=n_ghost))

    kind = np.concatenate(s_kind)
    expected_known = float((np.where(kind == 1, 3, 2) + 3.0).sum())  # mean events per session
    # 5. Anonymous sessions: sized so that ~15 % of all events are anonymous.
    n_anon = round(expected_known * 0.15 / 0.85 / 3.0)
    anon_day = rng.integers(0, d + 1, size=n_anon)
    s_cust.append(np.full(n_anon, -1))
    s_kind.append(np.full(n_anon, 2))
    s_start.append(anon_day * _DAY + _time_of_day(rng, n_anon))
    s_order.append(np.full(n_anon, -1))

    cust = np.concatenate(s_cust)
    kind = np.concatenate(s_kind)
    start = np.concatenate(s_start)
    s_ord = np.concatenate(s_order)
    n_s = len(cust)
    n_ev = np.where(kind == 1, 3, np.where(kind == 2, 1, 2)) + rng.poisson(np.where(kind == 2, 2.0, 3.0), size=n_s)
    known = (cust >= 0) & (cust < n_cust)
    s_device = np.where(
        known & (rng.random(n_s) < 0.8),
        people.pref_device[np.clip(cust, 0, n_cust - 1)],
        rng.choice(3, size=n_s, p=[0.6, 0.3, 0.1]),
    )
    s_device = np.where((kind == 1) & (orders.channel[np.clip(s_ord, 0, None)] == 2), 0, s_device)
    s_cat = np.where(
        known & (rng.random(n_s) < 0.7),
        people.fav_cat[np.clip(cust, 0, n_cust - 1)],
        rng.choice(len(CATEGORIES), size=n_s, p=_norm(_CATEGORY_WEIGHTS)),
    )
    s_cat = np.where(kind == 1, orders.first_cat[np.clip(s_ord, 0, None)], s_cat)

    # Events, generated in fixed-size blocks of sessions so memory stays bounded at any scale.
    order_sec = np.where(kind == 1, orders.sec[np.maximum(s_ord, 0)], 0)
    blocks = []
    for lo_s in range(0, n_s, sessions_per_block):
        hi_s = min(lo_s + sessions_per_block, n_s)
        block = _session_events(
            rng,
            lo_s,
            kind[lo_s:hi_s],
            n_ev[lo_s:hi_s],
            start[lo_s:hi_s],
            s_cat[lo_s:hi_s],
            order_sec[lo_s:hi_s],
            cal.end_s,
        )
        start[lo_s:hi_s] = block.pop()
        blocks.append(block)
    e_sess, sec, etype, cat, duration = (np.concatenate(x) for x in zip(*blocks, strict=True))
    del blocks
    # File order: by time, then by position in the event layout (session, then position in it).
    srt = np.argsort(sec, kind="stable")  # stable: ties keep the layout order
    e_sess, sec, etype, cat, duration = (x[srt] for x in (e_sess, sec, etype, cat, duration))
    del srt
    # Session ids grow with the session start time.
    rank_of_session = np.empty(n_s, dtype=np.int32)
    rank_of_session[np.argsort(start * n_s + np.arange(n_s))] = np.arange(n_s, dtype=np.int32)
    return _Events(
        cust=cust.astype(np.int32)[e_sess],
        session=rank_of_session[e_sess],
        sec=sec,
        etype=etype,
        cat=cat,
        duration=duration,
        device=s_device.astype(np.int8)[e_sess],
        session_start=np.maximum(start, 0),
        session_cust=cust,
        session_count=n_s,
    )


def _session_events(
    rng: np.random.Generator,
    first_session: int,
    kind: np.ndarray,
    n_ev: np.ndarray,
    start: np.ndarray,
    s_cat: np.ndarray,
    order_sec: np.ndarray,
    end_s: int,
) -> list[np.ndarray]:
    """Events of a block of sessions, laid out session by session, kept within the data span.

    Returns compact arrays ``[session, sec, type, category, duration, session_start]``; checkout
    sessions get their start here, so that their checkout lands a few minutes before the order.
    """
    n_s = len(kind)
    e_sess = np.repeat(np.arange(n_s), n_ev)
    n_e = len(e_sess)
    first = np.cumsum(n_ev) - n_ev
    last = first + n_ev - 1
    etype = rng.choice(5, size=n_e, p=[0.25, 0.42, 0.15, 0.12, 0.06])  # page/product/search/cart
    opener = np.where(rng.random(n_s) < 0.25, 6, 0)  # login or landing page
    etype[first] = np.where(kind == 2, np.where(rng.random(n_s) < 0.3, 2, 0), opener)
    co = kind == 1
    etype[last[co] - 1] = 3  # add_to_cart, then checkout
    etype[last[co]] = 5
    duration = np.minimum(rng.lognormal(3.0, 1.0, size=n_e), 3600).astype(np.int64)
    is_login, is_checkout = etype == 6, etype == 5
    duration[is_login] = rng.integers(1, 10, size=int(is_login.sum()))
    duration[is_checkout] = rng.integers(5, 60, size=int(is_checkout.sum()))
    step = duration + rng.integers(1, 20, size=n_e)  # the event, then a short pause
    excl = np.cumsum(step) - step
    offset = excl - np.repeat(excl[first], n_ev)
    co_start = order_sec - (excl[last] - excl[first]) - rng.integers(10, 300, size=n_s)
    start = np.where(co, co_start, start)
    sec = np.repeat(start, n_ev) + offset
    cat = np.repeat(s_cat, n_ev)
    other = rng.random(n_e) >= 0.75
    cat[other] = rng.choice(len(CATEGORIES), size=int(other.sum()))
    cat[is_login | is_checkout] = -1
    keep = (sec >= 0) & (sec <= end_s)
    return [
        (e_sess[keep] + first_session).astype(np.int32),
        sec[keep],
        etype[keep].astype(np.int8),
        cat[keep].astype(np.int8),
        duration[keep].astype(np.int32),
        start,
    ]
