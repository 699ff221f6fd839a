"""The one config file (``segments.yaml``): where data lives and how the user's files map onto contracts.

Validated completely before any work starts; an invalid file fails with an error naming the key.
Relative paths resolve against the config file's folder, never the current directory.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.contracts import INPUT_SOURCES, load_contract

CONFIG_ENV = "SEGMENTS_CONFIG"
DEFAULT_CONFIG_NAME = "segments.yaml"


class ConfigError(ValueError):
    """The config file is invalid; the message names the file and the key."""


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai')") from exc
    return value


class SourceConfig(BaseModel):
    """How one source's files are found and mapped onto its contract."""

    model_config = ConfigDict(extra="forbid")

    glob: str
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    delimiter: str = ","
    rename: dict[str, str] = Field(default_factory=dict)
    timestamp_format: str | None = None
    time_zone: str | None = None
    currency: str | None = None
    # Numbers such as 1,234.50 or 1.234,50: the separators of this source's exports (default: plain 1234.50).
    decimal_separator: str = "."
    thousands_separator: str | None = None
    # A symbol written with amounts (e.g. "¥"), stripped before parsing; the currency code stays `currency`.
    currency_symbol: str | None = None
    # Dates before this are quarantined as implausible (default: the top-level earliest_date).
    earliest_date: date | None = None
    enabled: bool = True

    @field_validator("glob")
    @classmethod
    def _glob_inside_root(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"glob {value!r} must be relative to landing_dir and stay inside it")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"delimiter must be one character, got {value!r}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_tz(value)

    @field_validator("currency_symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(ch.isdigit() or ch in "+-.," for ch in value)):
            raise ValueError(f"currency_symbol must be a symbol such as '¥' or '$', without digits, got {value!r}")
        return value

    @model_validator(mode="after")
    def _separators(self) -> SourceConfig:
        dec, thou = self.decimal_separator, self.thousands_separator
        if dec not in (".", ","):
            raise ValueError(f"decimal_separator must be '.' or ',', got {dec!r}")
        if thou is not None and (thou not in (",", ".", " ", "'", "\u00a0", "\u202f", "_") or thou == dec):
            raise ValueError(
                f"thousands_separator must be one of ',', '.', ' ', \"'\", '_' and differ from decimal_separator "
                f"{dec!r}, got {thou!r}"
            )
        return self


class ScheduleConfig(BaseModel):
    """Nightly schedule: at ``hour``:``minute`` in the business time zone (``time_zone`` may only repeat it)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    hour: int = Field(2, ge=0, le=23)
    minute: int = Field(0, ge=0, le=59)
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_tz(value)


class QualityConfig(BaseModel):
    """Thresholds of the soft (WARN) quality checks; hard checks have no knobs."""

    model_config = ConfigDict(extra="forbid")

    max_segment_share_change: float = Field(0.10, gt=0, le=1)
    max_unassigned_share_increase: float = Field(0.05, gt=0, le=1)
    max_cut_point_change: float = Field(0.50, gt=0)
    min_buyers_for_quantiles: int = Field(100, ge=1)
    max_quarantine_share: float = Field(0.05, ge=0, le=1)
    max_data_age_days: int = Field(3, ge=0)
    # Input suites re-check a repeatable sample of this many of a run's rows (0 = all of them): ingestion
    # already enforced every rule on every row, the run's accounting is always verified in full.
    input_check_sample_rows: int = Field(100_000, ge=0)  # newest order older than this many days before D: stale (warn)


class FeaturesConfig(BaseModel):
    """Feature windows (PRODUCT.md §3): every window is the N days ending with the snapshot date D."""

    model_config = ConfigDict(extra="forbid")

    lookback_days: int | None = None  # frequency/monetary window; None = all history
    short_window_days: int = 30  # behaviour columns sessions_{N}d ...
    long_window_days: int = 90
    complaint_window_days: int = 90  # complaints_{N}d

    @model_validator(mode="after")
    def _valid(self) -> FeaturesConfig:
        from features.customer_features import FeatureError

        try:
            self.params()
        except FeatureError as exc:
            raise ValueError(str(exc)) from None
        return self

    def params(self, **overrides: int | None) -> Any:
        """``features.customer_features.FeatureParams`` from these settings, launchpad values over them."""
        from features.customer_features import FeatureParams

        values = {**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        return FeatureParams(
            lookback_days=values["lookback_days"],
            windows=(values["short_window_days"], values["long_window_days"]),
            complaint_window_days=values["complaint_window_days"],
        )


class Settings(BaseModel):
    """Validated contents of ``segments.yaml`` with absolute paths."""

    model_config = ConfigDict(extra="forbid")

    landing_dir: Path = Path("data/landing")
    # Landing files where Spark reads them (s3a://bucket/landing, abfss://..., hdfs://..., file:///...): listed,
    # hashed and read through Spark's file systems, never by the driver's Python (engine: spark only;
    # docs/scale-out.md). When set, ingestion reads it instead of landing_dir.
    landing_url: str | None = None
    warehouse: Path = Path("data/warehouse.duckdb")
    published_dir: Path = Path("data/published")
    # Paths in catalog.duckdb views: relative (the folder can move; readers set file_search_path or run
    # from the folder) or absolute (any working directory; rebuilt by the next run after a move).
    catalog_paths: Literal["relative", "absolute"] = "relative"
    time_zone: str = "UTC"
    currency: str = "CNY"
    # What the report and exports show: English or Chinese display names and headings.
    language: Literal["en", "zh"] = "en"
    currencies: list[str] = Field(default_factory=list)
    # First snapshot date offered as a partition; None = the first business date in the data.
    snapshot_start: date | None = None
    # Timestamps before this date are quarantined as implausible (an order in year 1 is a typo, not history).
    earliest_date: date = date(2000, 1, 1)
    # DuckDB spills to disk beyond this; keeps a run's peak memory bounded (PRODUCT.md §6: < 6 GB).
    memory_limit: str = "4GB"
    # Engine of the heavy stages (features, scores, grades, lifecycle, cluster assignment): duckdb in
    # process, or spark (pip install '.[spark]', Java 17; docs/scale-out.md). Results are identical.
    engine: Literal["duckdb", "spark"] = "duckdb"
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    sources: dict[str, SourceConfig]
    segmentation: dict[str, Any] = Field(default_factory=dict)
    # Manual overrides (CSV or YAML: customer_id, field, value, reason, author, expires), applied last.
    overrides_file: Path | None = None
    config_path: Path | None = None

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_tz(value)

    @field_validator("landing_url")
    @classmethod
    def _landing_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/\s]*)(/.*)?", value.strip())
        path = ((url[3] if url else None) or "").rstrip("/")
        if url is None or not (url[2] or path):
            raise ValueError(
                f"landing_url must be a URL Spark reads, like s3a://bucket/landing or file:///data/landing; "
                f"got {value!r} (a local folder goes in landing_dir)"
            )
        return f"{url[1].lower()}://{url[2].lower()}{path}"  # as Hadoop names what it lists

    @field_validator("memory_limit")
    @classmethod
    def _mem(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value.strip()):
            raise ValueError(f"memory_limit must look like '4GB' or '512MB', got {value!r}")
        return value.strip()

    @field_validator("currency")
    @classmethod
    def _ccy(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"currency must be a 3-letter ISO code, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_sources(self) -> Settings:
        unknown = sorted(set(self.sources) - set(INPUT_SOURCES))
        if unknown:
            raise ValueError(f"sources: unknown source(s) {unknown}; known: {list(INPUT_SOURCES)}")
        if "orders" not in self.sources:
            raise ValueError("sources.orders is required")
        for name, src in self.sources.items():
            contract_cols = set(load_contract(name).column_names)
            bad = sorted(v for v in src.rename.values() if v not in contract_cols)
            if bad:
                raise ValueError(f"sources.{name}.rename maps onto unknown contract columns {bad}")
        if self.landing_url is not None and self.engine != "spark":
            raise ValueError(
                f"landing_url {self.landing_url!r} is listed and read by Spark: set engine: spark, or copy the files "
                "under landing_dir"
            )
        if self.schedule.time_zone not in (None, self.time_zone):
            raise ValueError(
                f"schedule.time_zone: the nightly schedule runs in the business time zone ({self.time_zone}) of "
                f"its daily partitions; remove schedule.time_zone or set time_zone (got {self.schedule.time_zone!r})"
            )
        if not self.currencies:
            self.currencies = [self.currency]
        elif self.currency not in self.currencies:
            self.currencies = [*self.currencies, self.currency]
        return self

    def windows(self) -> dict[str, int]:
        """The feature windows that name window columns and fill rule placeholders: short, long, complaint."""
        return {
            "short": self.features.short_window_days,
            "long": self.features.long_window_days,
            "complaint": self.features.complaint_window_days,
        }

    def source_time_zone(self, source: str) -> str:
        """Time zone naive timestamps of ``source`` are read in."""
        return self.sources[source].time_zone or self.time_zone

    def source_earliest_date(self, source: str) -> date:
        """Earliest plausible date of ``source``'s timestamps."""
        return self.sources[source].earliest_date or self.earliest_date

    def source_currency(self, source: str) -> str:
        """Currency assumed when ``source`` has no currency column."""
        return self.sources[source].currency or self.currency


def default_config_path() -> Path:
    """``$SEGMENTS_CONFIG`` if set, else ``segments.yaml`` in the current directory."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else Path.cwd() / DEFAULT_CONFIG_NAME


def load_settings(path: Path | str | None = None) -> Settings:
    """Load and validate the config file; relative paths resolve against its folder."""
    cfg_path = Path(path).expanduser() if path else default_config_path()
    if not cfg_path.exists():
        raise ConfigError(f"config file {cfg_path} not found (set {CONFIG_ENV} or create {DEFAULT_CONFIG_NAME})")
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
    return settings_from_dict(raw, base_dir=cfg_path.resolve().parent, config_path=cfg_path.resolve())


def settings_from_dict(raw: dict[str, Any], base_dir: Path, config_path: Path | None = None) -> Settings:
    """Validate a config mapping; name the offending key on error."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path or 'config'}: top level must be a mapping")
    try:
        settings = Settings.model_validate({**raw, "config_path": config_path})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{config_path or 'config'}: {problems}") from exc
    # Segmentation rules (maps, grades, tiers, clusters) are validated now too, before any work starts.
    from models.settings import SegmentationSettingsError, load_segmentation_settings

    try:
        load_segmentation_settings(settings.segmentation, windows=settings.windows())
    except SegmentationSettingsError as exc:
        raise ConfigError(f"{config_path or 'config'}: {exc}") from exc
    for attr in ("landing_dir", "warehouse", "published_dir", "overrides_file"):
        value: Path | None = getattr(settings, attr)
        if value is not None and not value.is_absolute():
            setattr(settings, attr, (base_dir / value).resolve())
    from models.overrides import OverrideFileError, load_overrides

    try:  # the file's shape is checked now; customers, fields and labels per snapshot (override_audit)
        load_overrides(settings.overrides_file)
    except OverrideFileError as exc:
        raise ConfigError(f"{config_path or 'config'}: overrides_file: {exc}") from exc
    return settings
