"""Customers and purchases: per-customer traits, purchase windows per archetype, orders and their lines.

Order timestamps are seconds from the calendar start; money is integer cents. Refund lines are added
1-30 days after their sale, never after the end of the data span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.sample_data.vocabulary import (
    _ARCH,
    _CATEGORY_WEIGHTS,
    _DAY,
    _N_STORES,
    _PREMIUM_WEIGHTS,
    _PRICE_LOGNORMAL,
    _PRODUCTS_PER_CATEGORY,
    ARCHETYPE_SHARES,
    CATEGORIES,
    _Calendar,
    _norm,
    _time_of_day,
)


@dataclass(frozen=True)
class _People:
    """Per-customer latent traits (index i is customer number i + 1)."""

    arch: np.ndarray
    fav_cat: np.ndarray
    pref_channel: np.ndarray
    home_store: np.ndarray
    pref_device: np.ndarray
    unhappy: np.ndarray


def _people(rng: np.random.Generator, n: int) -> _People:
    """Assign archetypes (exact shares, shuffled) and per-customer preferences."""
    shares = np.array(list(ARCHETYPE_SHARES.values()))
    counts = np.floor(shares * n).astype(np.int64)
    counts[: n - counts.sum()] += 1  # remainder to the first archetypes, deterministically
    arch = rng.permutation(np.repeat(np.arange(len(shares)), counts))
    loyal = arch == _ARCH["loyal"]
    fav_cat = np.where(
        loyal,
        rng.choice(len(CATEGORIES), size=n, p=_norm(_PREMIUM_WEIGHTS)),
        rng.choice(len(CATEGORIES), size=n, p=_norm(_CATEGORY_WEIGHTS)),
    )
    pref_channel = rng.choice(3, size=n, p=[0.45, 0.25, 0.30])
    pref_device = np.where(
        pref_channel == 2,
        rng.choice(3, size=n, p=[0.85, 0.0, 0.15]),
        rng.choice(3, size=n, p=[0.55, 0.35, 0.10]),
    )
    unhappy_rate = np.full(len(shares), 0.08)
    for name, rate in (("lapsed", 0.30), ("at_risk", 0.25), ("winback", 0.15), ("one_off", 0.15)):
        unhappy_rate[_ARCH[name]] = rate
    unhappy = rng.random(n) < unhappy_rate[arch]
    home_store = rng.integers(0, _N_STORES, size=n)
    return _People(arch, fav_cat, pref_channel, home_store, pref_device, unhappy)


_Segments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # customer, first day, last day, n


def _purchase_segments(rng: np.random.Generator, arch: np.ndarray, last_day: int) -> _Segments:
    """Purchase windows per customer: (customer, first day, last day, number of orders).

    Orders are drawn uniformly inside each window; the windows encode the archetypes (e.g. a
    win-back customer has an old window ending >= 272 days ago and a recent one in the last 90 days,
    so the gap is always > 180 days). Windows falling outside a short history are dropped.
    """
    d = last_day
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(cust: np.ndarray, lo: object, hi: object, n: object) -> None:
        m = len(cust)
        parts.append(
            (
                cust,
                np.broadcast_to(np.asarray(lo, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(hi, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(n, dtype=np.int64), (m,)),
            )
        )

    def members(name: str) -> tuple[np.ndarray, int]:
        c = np.flatnonzero(arch == _ARCH[name])
        return c, len(c)

    c, m = members("loyal")
    lo = rng.integers(0, max(1, d // 2 + 1), size=m)
    gap_days = rng.uniform(14, 35, size=m)
    add(c, lo, d, np.maximum(2, rng.poisson((d - lo + 1) / gap_days)))
    add(c, d - 20, d, 1)  # always a recent order
    c, m = members("regular")
    add(c, rng.integers(0, max(1, d - 119), size=m), d, 1 + rng.poisson(5, size=m))
    add(c, d - 89, d, 1)
    c, m = members("occasional")
    add(c, 0, d, 2 + rng.poisson(1.5, size=m))
    c, m = members("one_off")
    add(c, 0, d, 1)
    c, m = members("lapsed")
    add(c, rng.integers(0, max(1, d - 181 - 119), size=m), d - 181, 3 + rng.poisson(7, size=m))
    c, m = members("new")
    add(c, d - 29, d, 1 + (rng.random(m) < 0.3))
    c, m = members("winback")
    add(c, rng.integers(0, max(1, d - 272 - 59), size=m), d - 272, 2 + rng.poisson(3, size=m))
    add(c, d - 89, d, 1 + rng.poisson(0.7, size=m))
    c, m = members("at_risk")
    add(c, rng.integers(0, max(1, d - 200), size=m), d - 91, rng.poisson(4, size=m))
    add(c, d - 180, d - 91, 1)  # the last purchase is 91-180 days ago

    cust, lo, hi, n = (np.concatenate(x) for x in zip(*parts, strict=True))
    lo = np.clip(lo, 0, None)
    hi = np.clip(hi, None, d)
    keep = (hi >= lo) & (n > 0)
    return cust[keep], lo[keep], hi[keep], n[keep]


@dataclass(frozen=True)
class _Orders:
    """Order grain (index = order number - 1, in time order) and line grain arrays."""

    cust: np.ndarray
    sec: np.ndarray
    channel: np.ndarray
    store: np.ndarray  # -1 when not offline
    first_cat: np.ndarray
    # lines (sales and refunds), sorted by (time, order, line)
    l_order: np.ndarray
    l_line: np.ndarray
    l_sec: np.ndarray
    l_qty: np.ndarray
    l_unit: np.ndarray  # cents
    l_amount: np.ndarray  # cents
    l_status: np.ndarray
    l_product: np.ndarray
    l_cat: np.ndarray


def _catalog(rng: np.random.Generator) -> np.ndarray:
    """Unit price in cents of every product (category-major), log-normal per category."""
    mu = np.repeat([p[0] for p in _PRICE_LOGNORMAL], _PRODUCTS_PER_CATEGORY)
    sigma = np.repeat([p[1] for p in _PRICE_LOGNORMAL], _PRODUCTS_PER_CATEGORY)
    yuan = np.clip(np.exp(rng.normal(mu, sigma)), 1, 200_000)
    return np.round(yuan).astype(np.int64) * 100 - 10  # shelf prices like 199.90


def _orders(rng: np.random.Generator, people: _People, segments: _Segments, cal: _Calendar) -> _Orders:
    """Orders from the purchase windows, their lines, cancellations and later refund lines."""
    seg_cust, seg_lo, seg_hi, seg_n = segments
    cust = np.repeat(seg_cust, seg_n)
    n_o = len(cust)
    day = np.repeat(seg_lo, seg_n) + (rng.random(n_o) * np.repeat(seg_hi - seg_lo + 1, seg_n)).astype(np.int64)
    sec = day * _DAY + _time_of_day(rng, n_o)
    order = np.lexsort((cust, sec))
    cust, sec = cust[order], sec[order]

    channel = np.where(rng.random(n_o) < 0.75, people.pref_channel[cust], rng.choice(3, size=n_o))
    store = np.where(
        channel == 1,
        np.where(rng.random(n_o) < 0.85, people.home_store[cust], rng.integers(0, _N_STORES, size=n_o)),
        -1,
    )
    cancelled = rng.random(n_o) < 0.03
    loyal = people.arch[cust] == _ARCH["loyal"]
    n_lines = 1 + np.where(
        loyal,
        rng.choice(5, size=n_o, p=[0.30, 0.30, 0.20, 0.12, 0.08]),
        rng.choice(5, size=n_o, p=[0.50, 0.25, 0.13, 0.08, 0.04]),
    )

    # Lines of the sales.
    l_order = np.repeat(np.arange(n_o), n_lines)
    n_l = len(l_order)
    first_line = np.cumsum(n_lines) - n_lines
    l_line = np.arange(n_l) - np.repeat(first_line, n_lines) + 1
    l_cust = cust[l_order]
    l_cat = np.where(
        rng.random(n_l) < 0.55,
        people.fav_cat[l_cust],
        rng.choice(len(CATEGORIES), size=n_l, p=_norm(_CATEGORY_WEIGHTS)),
    )
    rank = (_PRODUCTS_PER_CATEGORY * rng.random(n_l) ** 3).astype(np.int64)  # popular products first
    l_product = l_cat * _PRODUCTS_PER_CATEGORY + rank
    discount = rng.choice(np.array([100, 95, 90, 80]), size=n_l, p=[0.70, 0.10, 0.12, 0.08])
    l_unit = np.maximum(1, (_catalog(rng)[l_product] * discount + 50) // 100)
    l_qty = np.minimum(rng.geometric(0.7, size=n_l), 6) + np.where(loyal[l_order], rng.poisson(0.3, n_l), 0)
    l_amount = l_qty * l_unit
    l_status = np.where(cancelled[l_order], 1, 0)
    l_sec = sec[l_order]

    # Refunds: ~4 % of completed orders, one line (part or all of it), 1-30 days later, never
    # after the end of the data span (those simply have not happened yet).
    cand = np.flatnonzero(~cancelled)
    r_order = cand[rng.random(len(cand)) < 0.04]
    m = len(r_order)
    r_src = first_line[r_order] + (rng.random(m) * n_lines[r_order]).astype(np.int64)
    r_sec = sec[r_order] + rng.integers(_DAY, 30 * _DAY, size=m)
    ok = r_sec <= cal.end_s
    r_order, r_src, r_sec = r_order[ok], r_src[ok], r_sec[ok]
    m = len(r_order)
    src_qty, src_unit, src_amount = l_qty[r_src], l_unit[r_src], l_amount[r_src]
    full = rng.random(m) < 0.5
    part_qty = 1 + (rng.random(m) * np.maximum(src_qty - 1, 1)).astype(np.int64)  # 1..q-1
    price_adjust = np.maximum(1, (src_amount * rng.uniform(0.2, 0.9, size=m)).astype(np.int64))
    r_qty = np.where(full, src_qty, np.where(src_qty > 1, part_qty, 1))
    r_amount = np.where(full, src_amount, np.where(src_qty > 1, part_qty * src_unit, price_adjust))

    cat_all = np.concatenate([l_cat, l_cat[r_src]])
    o_idx = np.concatenate([l_order, r_order])
    line_all = np.concatenate([l_line, n_lines[r_order] + 1])
    sec_all = np.concatenate([l_sec, r_sec])
    srt = np.lexsort((line_all, o_idx, sec_all))
    return _Orders(
        cust=cust,
        sec=sec,
        channel=channel,
        store=store,
        first_cat=l_cat[first_line],
        l_order=o_idx[srt],
        l_line=line_all[srt],
        l_sec=sec_all[srt],
        l_qty=np.concatenate([l_qty, r_qty])[srt],
        l_unit=np.concatenate([l_unit, src_unit])[srt],
        l_amount=np.concatenate([l_amount, r_amount])[srt],
        l_status=np.concatenate([l_status, np.full(m, 2)])[srt],
        l_product=np.concatenate([l_product, l_product[r_src]])[srt],
        l_cat=cat_all[srt],
    )
