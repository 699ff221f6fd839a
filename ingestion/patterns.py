"""The text patterns of the row rules: one text for both engines (RE2 in DuckDB, Java on Spark read them alike)."""

# Unicode white space trimmed from every value like a space (tab, no-break, ideographic, zero-width, BOM).
WHITESPACE = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# DuckDB's trim(x, characters) is ~5x slower than a guarded regex over these classes (RE2: \s, \p{Z}).
_WS_CLASS = r"[\s\p{Z}\x{0b}\x{85}\x{200b}\x{feff}]"
WS_EDGE = f"^{_WS_CLASS}|{_WS_CLASS}$"
WS_RUNS = f"^{_WS_CLASS}+|{_WS_CLASS}+$"
# A row's values joined by the unit separator: one search per row finds whether any value has white space at
# an edge (a value holding the separator itself only costs a needless per-value look, never a missed trim).
WS_ANY_EDGE = rf"(^|\x{{1f}}){_WS_CLASS}|{_WS_CLASS}(\x{{1f}}|$)"
# `[ \t\n\f\r]`, not `\s`: RE2 and Java disagree on whether `\s` holds \x0b (ingestion also runs on Spark).
_SP = r"[ \t\n\f\r]"
OFFSET_SUFFIX = rf"\d{{1,2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_SP}*([zZ]|[+-]\d{{2}}(:?\d{{2}})?)$"
ZONE_SUFFIX = rf"^(.*[0-9]){_SP}+([A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*)$"
# The texts a cast may read, the same on both engines: DuckDB's casts alone also take '1_000', '0x10',
# '2026/11/01' and '24:00:00', Spark's alone Eastern Arabic digits, '2026', '2026-11' and '+2026-11-01'.
NUMBER_TEXT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_ISO_DATE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
_ISO_TIME = r"([01]?[0-9]|2[0-3]):[0-5]?[0-9](:[0-5]?[0-9](\.[0-9]+)?)?"
ISO_TIMESTAMP = rf"{_ISO_DATE}([T ]{_ISO_TIME})?"
# Offsets from -18:00 to +18:00, as both engines take them (DuckDB alone reads +08:99 as 09:39).
_OFFSET = r"([zZ]|[+-]((0[0-9]|1[0-7])(:?[0-5][0-9](:[0-5][0-9])?)?|18(:?00(:00)?)?))"
ISO_OFFSET_TIMESTAMP = rf"{_ISO_DATE}[T ]{_ISO_TIME}{_OFFSET}"
UTC_NAMES = ["UTC", "GMT", "UT", "Z", "ZULU", "UCT", "UNIVERSAL", "ETC/UTC", "ETC/GMT"]
CURRENCY_SYMBOLS = "[¥￥$€£₩₹元]"
