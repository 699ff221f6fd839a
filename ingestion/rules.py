"""Row rules from the contract, compiled to one SQL statement that stages ``_raw`` into ``_stg``.

``_stg`` holds per contract column the trimmed text ``v_<col>``, the typed value ``t_<col>`` (NULL when
the text does not parse) and ``_rule``: the number of the first rule the row breaks (NULL when it breaks
none). Identifiers come only from the contract; user values (formats, zones, separators, accepted values,
dates) are bound parameters. Every rule is written here once; ``quarantine.py`` turns ``_rule`` into rows.

Timestamps: an offset (``Z``, ``+08:00``) or a zone name after the time (``UTC``, ``America/New_York``)
wins; ambiguous abbreviations (``CST``) are quarantined; naive values are read in the source time zone.
Daylight-saving policy for naive values: a local time that does not exist (skipped by the spring-forward
gap) is quarantined; one that exists twice (the fall-back hour) is read as the earlier instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from data_contracts.contracts import Column, Contract
from ingestion.patterns import (
    CURRENCY_SYMBOLS,
    ISO_OFFSET_TIMESTAMP,
    ISO_TIMESTAMP,
    NUMBER_TEXT,
    OFFSET_SUFFIX,
    UTC_NAMES,
    WHITESPACE,
    WS_ANY_EDGE,
    WS_EDGE,
    WS_RUNS,
    ZONE_SUFFIX,
)
from ingestion.readers import q
from ingestion.zones import earlier_instant, fixed_offset, zone_changes_offset, zone_names
from segments.config import Settings

MAX_VALUE_CHARS = 200
MASK = "<masked: PII>"


@dataclass(frozen=True)
class Rule:
    """One row rule: the SQL condition, the column it names and the reason (text or SQL over the row)."""

    code: str  # required | type | precision | min | max | accepted | earliest | future | require_any | reader
    column: str | None  # None: the reader names the column (``_bad_col``)
    condition: str
    reason: str  # static reason, bound as a parameter
    reason_sql: str | None = None  # overrides ``reason``: a SQL expression over the staged row


def _show_number(x: float) -> str:
    """10000000.0 -> '10000000' (not '1e+07'), 0.5 -> '0.5'."""
    return str(int(x)) if x.is_integer() else repr(x)


@dataclass
class Stage:
    """Everything needed to stage one source's rows: settings resolved once per run."""

    contract: Contract
    settings: Settings
    source: str
    run_ts: datetime  # naive UTC

    def __post_init__(self) -> None:
        self.src = self.settings.sources[self.source]
        self.tz = self.settings.source_time_zone(self.source)
        self.earliest = self.settings.source_earliest_date(self.source)
        self.check_dst = zone_changes_offset(self.tz, self.earliest, self.run_ts.date())
        self.accepted = _accepted_values(self.contract, self.settings)
        self.rules = self._rules()
        # Loaded times lie between the earliest date and the run: one offset over that span makes the
        # business-day date an addition instead of a time-zone lookup per row.
        self.biz_offset = fixed_offset(self.settings.time_zone, self.earliest, self.run_ts.date())

    def local_date_sql(self, c: Column) -> str:
        """The business-day date (config ``time_zone``) of UTC timestamp column ``c`` of a loaded row."""
        col = q(c.name)
        if self.biz_offset is not None and c.not_after_run:
            return f"cast({col} + $biz_offset as date)"
        return f"cast(timezone($biz_tz, timezone('UTC', {col})) as date)"

    # ---- values
    def _number_text(self, v: str) -> str:
        """Numeric text with the configured currency symbol and separators removed (NULL if malformed)."""
        src = self.src
        if src.currency_symbol:
            v = f"trim(replace({v}, $cur_sym, ''), $ws)"
        if src.thousands_separator or src.decimal_separator != ".":
            v = f"case when regexp_full_match({v}, $num_re) then replace(replace({v}, $thou, ''), $dec, '.') end"
        return v

    def num_re(self) -> str:
        """Pattern of a well-formed number under the configured separators."""
        t, d = self.src.thousands_separator, self.src.decimal_separator
        groups = rf"[0-9]{{1,3}}({re.escape(t)}[0-9]{{3}})+|[0-9]+" if t else "[0-9]+"
        return rf"[+-]?({groups})({re.escape(d)}[0-9]+)?"

    def params(self) -> dict[str, Any]:
        """Bound values the staging SQL and the reasons may use."""
        src = self.src
        params: dict[str, Any] = {
            "src_tz": self.tz,
            "ts_fmt": src.timestamp_format or "%Y-%m-%dT%H:%M:%S",
            "run_ts": self.run_ts,
            "earliest": datetime(self.earliest.year, self.earliest.month, self.earliest.day),
            "ws": WHITESPACE,  # trim set for separators and symbols
            "zones": list(zone_names()),
            "utc_names": UTC_NAMES,
            "cur_sym": src.currency_symbol or "",
            "num_re": self.num_re(),
            "thou": src.thousands_separator or "",
            "dec": src.decimal_separator,
            "biz_tz": self.settings.time_zone,
            "biz_offset": self.biz_offset,
        }
        params |= {f"acc_{k}": v for k, v in self.accepted.items()}
        for c in self.contract.columns:
            default = _default_value(c, self.settings, self.source)
            if default is not None:
                params[f"def_{c.name}"] = str(default)
        params |= {
            # Bound lists hold no NULL (Spark refuses one in a parameter): '' and 0 stand for "none".
            "rule_columns": [r.column or "" for r in self.rules],
            "rule_codes": [r.code for r in self.rules],
            "rule_reasons": [r.reason for r in self.rules],
            "rule_values": [v or 0 for v in self._shown_values()[1]],
        }
        params |= {"pii": sorted(self.contract.pii_columns), "mask": MASK, "n": MAX_VALUE_CHARS}
        params |= self._reason_texts()
        return params

    def _reason_texts(self) -> dict[str, str]:
        s = f"sources.{self.source}"
        return {
            "why_abbrev": "ambiguous time-zone abbreviation after the time: write an offset (+08:00) or an IANA "
            f"name (Asia/Shanghai), or drop it and set {s}.time_zone",
            "why_zone": "unknown time-zone name after the time: expected an IANA name such as America/New_York",
            "why_gap": f"a local time that does not exist in {self.tz} (skipped by a daylight-saving change): "
            "export times with their offset or in UTC",
            "why_comma": f"a ',' in a number: set {s}.thousands_separator: ',' (for 1,234.50) or "
            f"{s}.decimal_separator: ',' (for 10,50)",
            "why_symbol": f"a currency symbol in a number: set {s}.currency_symbol to strip it (the currency "
            f"code comes from a currency column or {s}.currency)",
        }

    def stage_sql(
        self,
        raw: str,
        positions: dict[str, str],
        raw_types: dict[str, str],
        key: tuple[str, ...] = (),
        *,
        hashes: bool = True,
    ) -> str:
        """``create temp table _stg`` from the relation ``raw`` in one pass: typed values, rule, finding, hashes.

        One row per record: ``_line``, every contract column typed (under its contract name), ``_rule`` (the
        first rule broken, NULL when none) and, for a row that broke one, its quarantine finding ``_qcol``,
        ``_qval`` (PII masked), ``_qreason``, ``_qcode``; ``_h`` hashes the typed values (exact duplicates)
        and ``_kh`` the ``key`` (key conflicts). Texts and parse scratch stay inside the statement: the table
        is as narrow as the warehouse table, not twice as wide. ``hashes=False`` leaves ``_h``/``_kh`` out (the
        Spark rendering: the hashes are DuckDB's, computed where the rows are loaded).
        """
        texts = ["_line"]
        for extra in ("_bad_col", "_bad_reason", "_bad_value"):
            texts.append(extra if extra in raw_types else f"null::varchar as {extra}")
        mapped = [f"cast({positions[c.name]} as varchar)" for c in self.contract.columns if c.name in positions]
        edge = f"regexp_matches(concat_ws(chr(31), {', '.join(mapped)}), '{WS_ANY_EDGE}')" if mapped else "false"
        strp, zoned, parsed, pre, typed = [], [], [], [], []
        for c in self.contract.columns:
            pos = positions.get(c.name)
            raw_type = raw_types.get(pos or "", "VARCHAR")
            text = f"nullif({_trimmed(f'cast({pos} as varchar)')}, '')" if pos else "null::varchar"
            if _default_value(c, self.settings, self.source) is not None:
                text = f"coalesce({text}, $def_{c.name})"
            texts.append(f"{text} as v_{c.name}")
            v, t = f"v_{c.name}", f"t_{c.name}"
            if c.type == "timestamp":
                native = raw_type.startswith("TIMESTAMP")
                if native:
                    texts.append(f"{pos} as r_{c.name}")
                strp.append(f"{'null::timestamp' if native else f'try_strptime({v}, $ts_fmt)'} as s_{c.name}")
                zoned.append(self._zone_expr(c, native))
                parsed.append(self._local_expr(c, native, raw_type))
                parsed.append(self._named_local(c.name, native))
                # Whether the zone name is a known one, looked up once (the zone list is a long bound constant).
                parsed.append(f"{'null::boolean' if native else f'list_contains($zones, z_{c.name})'} as k_{c.name}")
                pre.append(f"timezone('UTC', timezone($src_tz, l_{c.name})) as u_{c.name}")
                pre.append(self._named_utc(c.name, native))
                typed.append(f"{self._ts_expr(c, native, raw_type)} as {t}")
            elif c.type in ("decimal", "integer", "double"):
                parsed.append(f"{self._number_text(v)} as n_{c.name}")
                typed.append(f"{_typed_number(c, f'n_{c.name}')} as {t}")
            else:
                typed.append(f"try_cast({v} as {c.sql_type}) as {t}")
        conds = " ".join(f"when {r.condition} then {i}" for i, r in enumerate(self.rules))
        levels = [", ".join(texts)]
        for cols in (strp, zoned, parsed, pre, typed):
            levels.append("*" + "".join(", " + x for x in cols))
        ctes = ", ".join(
            f"l{i} as (select {cols} from {'edged' if i == 0 else f'l{i - 1}'})" for i, cols in enumerate(levels)
        )
        names = [c.name for c in self.contract.columns]
        col, value, reason, code = self.finding_sql()
        out = [
            "_line",
            *(f"t_{n} as {q(n)}" for n in names),
            "_rule",
            # A good row (the common case) skips the branches: its finding is NULL.
            f"case when _rule is not null then {col} end as _qcol",
            f"case when _rule is not null then left({value}, $n) end as _qval",
            f"case when _rule is not null then {reason} end as _qreason",
            f"case when _rule is not null then {code} end as _qcode",
        ]
        if hashes:
            out.append(f"hash({', '.join(f't_{n}' for n in names)}) as _h")
        if hashes and key:
            out.append(f"hash({', '.join(f't_{n}' for n in key)}) as _kh")
        return f"""
            create or replace temp table _stg as
            with edged as (select *, {edge} as _edge from {raw}),
            {ctes},
            checked as (select *, case {conds} end as _rule from l{len(levels) - 1})
            select {", ".join(out)} from checked
        """

    def finding_sql(self) -> tuple[str, str, str, str]:
        """Column, (masked) value, reason and rule code of the rule a row broke (``_rule``), as SQL.

        Static parts are looked up in bound lists by rule number (a short statement to plan per file); only
        the reasons that depend on the row are branches. A reason never quotes the value: the value has its
        own column, masked for PII columns; a rule over several columns (require_any) shows no value.
        """
        shown, _ = self._shown_values()
        reader = "case when list_contains($pii, _bad_col) then $mask else _bad_value end"
        own = "nullif($rule_values[_rule + 1], 0)"
        value = f"case when _rule = 0 then {reader} else [{', '.join(shown) or 'null'}][{own}] end"
        varying = " ".join(f"when {i} then {r.reason_sql}" for i, r in enumerate(self.rules) if r.reason_sql)
        reason = (
            f"coalesce(case _rule {varying} end, $rule_reasons[_rule + 1])" if varying else "$rule_reasons[_rule + 1]"
        )
        return "coalesce(nullif($rule_columns[_rule + 1], ''), _bad_col)", value, reason, "$rule_codes[_rule + 1]"

    def _shown_values(self) -> tuple[list[str], list[int | None]]:
        """The value expressions a finding can show, and per rule the 1-based position of its own (None: none)."""
        pii = set(self.contract.pii_columns)
        shown: list[str] = []
        out: list[int | None] = []
        for r in self.rules:
            if r.column is None or "," in r.column:
                out.append(None)
                continue
            v = "$mask" if r.column in pii else f"v_{r.column}"
            if v not in shown:
                shown.append(v)
            out.append(shown.index(v) + 1)
        return shown, out

    def _zone_expr(self, c: Column, native: bool) -> str:
        """Offset flag and zone name, looked for only where the configured format did not parse (cheap)."""
        v, n = f"v_{c.name}", c.name
        if native:
            return f"false as o_{n}, null::varchar as z_{n}"
        return (
            f"case when s_{n} is not null or {v} is null then false "
            f"else regexp_matches({v}, '{OFFSET_SUFFIX}') end as o_{n}, "
            f"case when s_{n} is not null or {v} is null then null "
            f"when regexp_matches({v}, '{ZONE_SUFFIX}') then regexp_extract({v}, '{ZONE_SUFFIX}', 2) end as z_{n}"
        )

    def _local_expr(self, c: Column, native: bool, raw_type: str) -> str:
        v, n = f"v_{c.name}", c.name
        if native:
            aware = raw_type == "TIMESTAMP WITH TIME ZONE"
            return f"{'null::timestamp' if aware else f'cast(r_{n} as timestamp)'} as l_{n}"
        return (
            f"case when s_{n} is not null then s_{n} when {v} is null or o_{n} or z_{n} is not null then null "
            f"else {_iso_cast(v)} end as l_{n}"
        )

    def _named_local(self, n: str, native: bool) -> str:
        """The local time before a zone name (``2026-11-01 10:00:00 Europe/Berlin``), NULL without one."""
        if native:
            return f"null::timestamp as zl_{n}"
        body = f"regexp_extract(v_{n}, '{ZONE_SUFFIX}', 1)"
        return (
            f"case when z_{n} is not null then coalesce(try_strptime({body}, $ts_fmt), {_iso_cast(body)}) end as zl_{n}"
        )

    def _named_utc(self, n: str, native: bool) -> str:
        """``zl_`` read in its named zone, as naive UTC (NULL for unknown or UTC names)."""
        if native:
            return f"null::timestamp as zu_{n}"
        return f"case when k_{n} then timezone('UTC', timezone(z_{n}, zl_{n})) end as zu_{n}"

    def _ts_expr(self, c: Column, native: bool, raw_type: str) -> str:
        v, n = f"v_{c.name}", c.name
        local = f"u_{n}"
        if self.check_dst:
            local = (
                f"case when timezone($src_tz, timezone('UTC', u_{n})) <> l_{n} then null "
                f"else {earlier_instant('$src_tz', f'l_{n}', f'u_{n}')} end"
            )
        if native:
            if raw_type == "TIMESTAMP WITH TIME ZONE":
                return f"timezone('UTC', r_{n})"
            return local
        safe_zone = f"case when k_{n} then z_{n} else 'UTC' end"
        # A named zone may change offset whatever the source zone does: the same earlier-instant rule.
        named = earlier_instant(safe_zone, f"zl_{n}", f"zu_{n}")
        offset = f"case when regexp_full_match({v}, '{ISO_OFFSET_TIMESTAMP}') then try_cast({v} as timestamptz) end"
        return (
            f"case when {v} is null then null "
            f"when o_{n} then timezone('UTC', {offset}) "
            f"when z_{n} is not null then case "
            f"when list_contains($utc_names, upper(z_{n})) then zl_{n} "
            f"when k_{n} then {named} end "
            f"else {local} end"
        )

    # ---- rules
    def _rules(self) -> list[Rule]:
        """Row rules in contract column order; the first rule a row breaks is its quarantine reason."""
        contract, ts_fmt = self.contract, self.src.timestamp_format
        rules = [Rule("reader", None, "_bad_reason is not null", "", "_bad_reason")]
        for c in contract.columns:
            v, t = f"v_{c.name}", f"t_{c.name}"
            if c.required:
                rules.append(Rule("required", c.name, f"{v} is null", "missing required value"))
            expected = {
                "timestamp": f"a timestamp ({ts_fmt or 'ISO 8601'})",
                "date": "a date (YYYY-MM-DD)",
                "decimal": "a number with at most 16 digits before the point",
            }.get(c.type, f"an {c.type}" if c.type == "integer" else f"a {c.type}")
            rules.append(
                Rule(
                    "type",
                    c.name,
                    f"{v} is not null and {t} is null",
                    f"not a valid {c.type}: expected {expected}",
                    self._type_reason(c),
                )
            )
            if c.type == "decimal":
                rules.append(
                    Rule(
                        "precision",
                        c.name,
                        f"try_cast(n_{c.name} as decimal(38, 10)) <> {t}",
                        "more than 2 decimal places: amounts are never rounded; export them to the cent",
                    )
                )
            if c.min is not None:
                rules.append(Rule("min", c.name, f"{t} < {c.min!r}", f"below the minimum {_show_number(c.min)}"))
            if c.max is not None:
                rules.append(Rule("max", c.name, f"{t} > {c.max!r}", f"above the maximum {_show_number(c.max)}"))
            values = self.accepted.get(c.name)
            if values is not None:
                rules.append(
                    Rule(
                        "accepted",
                        c.name,
                        f"{t} is not null and not list_contains($acc_{c.name}, {t})",
                        f"not an accepted value (expected one of: {', '.join(values)})",
                    )
                )
            if c.type in ("timestamp", "date"):
                rules.append(
                    Rule(
                        "earliest",
                        c.name,
                        f"{t} < $earliest",
                        f"before the earliest plausible date {self.earliest.isoformat()} "
                        f"(config earliest_date or sources.{self.source}.earliest_date)",
                    )
                )
            if c.not_after_run:
                rules.append(
                    Rule(
                        "future",
                        c.name,
                        f"{t} > $run_ts",
                        f"in the future: after the ingest run time {self.run_ts:%Y-%m-%d %H:%M:%S} UTC",
                    )
                )
        if contract.require_any:
            rules.append(
                Rule(
                    "require_any",
                    ",".join(contract.require_any),
                    " and ".join(f"t_{n} is null" for n in contract.require_any),
                    f"none of {', '.join(contract.require_any)} is present (at least one is required)",
                )
            )
        return rules

    def _type_reason(self, c: Column) -> str | None:
        """SQL naming the likely cause of a value that does not parse, else None (the static reason)."""
        v, n = f"v_{c.name}", c.name
        if c.type == "timestamp":
            return (
                f"case when z_{n} is not null and not contains(z_{n}, '/') "
                f"and not list_contains($utc_names, upper(z_{n})) then $why_abbrev "
                f"when z_{n} is not null and not k_{n} "
                f"and not list_contains($utc_names, upper(z_{n})) then $why_zone "
                f"when l_{n} is not null then $why_gap end"
            )
        if c.type in ("decimal", "integer", "double"):
            return (
                f"case when regexp_matches({v}, '{CURRENCY_SYMBOLS}') then $why_symbol "
                f"when contains({v}, ',') and regexp_full_match({v}, '[+-]?[0-9.,]+') then $why_comma end"
            )
        return None


def _trimmed(x: str) -> str:
    """``x`` without leading/trailing Unicode white space; the regexes run only in rows that need it (``_edge``)."""
    return (
        f"case when _edge and regexp_matches({x}, '{WS_EDGE}') "
        f"then regexp_replace({x}, '{WS_RUNS}', '', 'g') else {x} end"
    )


def _iso_cast(x: str) -> str:
    """``x`` cast to TIMESTAMP when it is an ISO 8601 date or date and time (``ISO_TIMESTAMP``), else NULL."""
    return f"case when regexp_full_match({x}, '{ISO_TIMESTAMP}') then try_cast({x} as timestamp) end"


def _typed_number(col: Column, n: str) -> str:
    if col.type == "integer":
        # A plain cast rounds '1.5' to 2; only whole numbers ('3', '-3', '3.0' from float exports) are integers,
        # cast without their '.0' (Spark's cast refuses a point in an integer; most texts have none).
        whole = f"case when contains({n}, '.') then regexp_replace({n}, '\\.0*$', '') else {n} end"
        return f"case when regexp_full_match({n}, '[+-]?[0-9]+(\\.0*)?') then try_cast({whole} as {col.sql_type}) end"
    if col.type == "double":  # NUMBER_TEXT has no 'inf'/'nan'; a text may still overflow to infinity
        cast = f"try_cast({n} as double)"
        return f"case when regexp_full_match({n}, '{NUMBER_TEXT}') and isfinite({cast}) then {cast} end"
    return f"case when regexp_full_match({n}, '{NUMBER_TEXT}') then try_cast({n} as {col.sql_type}) end"


def _accepted_values(contract: Contract, settings: Settings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in contract.columns:
        if c.accepted_values is not None:
            out[c.name] = list(c.accepted_values)
        elif c.accepted_values_from is not None:
            out[c.name] = list(getattr(settings, c.accepted_values_from))
    return out


def _default_value(c: Column, settings: Settings, source: str) -> Any:
    if c.default_from == "currency":
        return settings.source_currency(source)
    if c.default_from is not None:
        return getattr(settings, c.default_from)
    return c.default
