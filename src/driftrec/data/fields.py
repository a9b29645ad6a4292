"""Parsers of single fields, shared by every importer and by `Dataset.from_frames`: one rule for
what an id is ("12.0" and " 12" are "12") and how a category cell splits ("a|b" or "a,b")."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Times must fit pandas' nanosecond datetimes (1677-09-22 to 2262-04-11), so every later step
# (time splits, reports, the service) can turn them into dates; the same bound for numbers and text.
TIMESTAMP_RANGE = (int(pd.Timestamp.min.ceil("s").timestamp()), int(pd.Timestamp.max.timestamp()))
TIMESTAMP_RANGE_TEXT = "1677-09-22..2262-04-11 UTC"


def clean_strings(col: pd.Series) -> np.ndarray:
    """Stripped strings, None where missing or empty, as an object array.

    Whole-number floats print as integers, so an id column that Parquet or pandas stored as float
    (because it has gaps) still gives "12", the same id a CSV file would give, not "12.0".
    """
    if pd.api.types.is_float_dtype(col.dtype):
        return _float_ids(col.to_numpy(np.float64, na_value=np.nan))
    values = col.to_numpy(dtype=object)
    if col.dtype == object:
        try:  # the common case, every cell a str (a text file): one pass
            return np.array([v.strip() or None for v in values], dtype=object)
        except AttributeError:
            pass
    out = np.full(len(values), None, dtype=object)
    present = ~pd.isna(values)
    stripped = [str(v).strip() for v in values[present]]
    out[present] = np.array([s if s else None for s in stripped], dtype=object)
    return out


def _float_ids(values: np.ndarray) -> np.ndarray:
    """Float cells as id text: whole numbers as integers ("12", "0" for -0.0), others as written
    ("12.5"), None for NaN. Cell by cell, so one fraction does not turn "12" into "12.0"."""
    out = np.full(len(values), None, dtype=object)
    finite = np.isfinite(values)
    whole = finite & (values == np.round(values)) & (np.abs(values) < 2.0**63)
    out[whole] = values[whole].astype(np.int64).astype(str).astype(object)  # the common case
    for row in np.flatnonzero(finite & ~whole):  # fractions, and whole numbers beyond int64
        value = float(values[row])
        out[row] = str(int(value)) if value == round(value) else repr(value)
    return out


def split_categories(value: object) -> list[str]:
    """Categories from a list, or from an "a|b" string (or "a,b" when it holds no "|")."""
    if isinstance(value, str):
        parts = value.split("|") if "|" in value else value.split(",")
        return [p.strip() for p in parts if p.strip()]
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return []
    return [str(v).strip() for v in value if v is not None and str(v).strip()]
