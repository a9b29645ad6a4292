"""An item catalog given beside the events (``import ... --items``), joined to the items the
events name: by id when the catalog uses the events' ids, else by title.

Matching by title is for two copies of one dataset published with different id schemes (the
Amazon Office copies: ReChorus ids with ASIN titles, and a rich-text copy with its own ids). A
catalog title matches an item whose own title, normalised alike (HTML entities decoded, quotes
dropped, case and spacing folded), starts with it at a word boundary; only matches that are
unique both ways are kept, and the report says how many.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict

import pandas as pd

from driftrec.data.report import ImportReport

PREFIX_WORDS = 3  # candidates are found by their first words, then compared whole
MAX_TITLE_WORDS = 32  # ReChorus titles keep the first 32 words


def normalise_title(title: str) -> str:
    text = html.unescape(str(title)).replace('"', "").replace("'", "").lower()
    return " ".join(re.sub(r"\s+", " ", text).split()[:MAX_TITLE_WORDS])


def match_titles(
    catalog: dict[str, str], items: dict[str, str]
) -> tuple[dict[str, str], dict[str, int]]:
    """catalog id -> item id, for catalog titles that begin exactly one item's title and whose
    item no other catalog title begins; with counts of what matched and what did not."""
    by_start: dict[str, list[str]] = defaultdict(list)
    normal = {i: normalise_title(t) for i, t in items.items() if t}
    for item, title in normal.items():
        words = title.split()
        for n in range(1, min(PREFIX_WORDS, len(words)) + 1):
            by_start[" ".join(words[:n])].append(item)
    found: dict[str, list[str]] = {}
    for cid, title in catalog.items():
        wanted = normalise_title(title)
        if not wanted:
            continue
        start = " ".join(wanted.split()[:PREFIX_WORDS])
        found[cid] = [
            i
            for i in by_start.get(start, [])
            if normal[i] == wanted or normal[i].startswith(wanted + " ")
        ]
    claimed: dict[str, int] = defaultdict(int)
    for hits in found.values():
        if len(hits) == 1:
            claimed[hits[0]] += 1
    matched = {c: h[0] for c, h in found.items() if len(h) == 1 and claimed[h[0]] == 1}
    counts = {
        "matched": len(matched),
        "ambiguous": sum(1 for c, h in found.items() if len(h) > 1 or (h and c not in matched)),
        "unmatched": len(catalog) - sum(1 for h in found.values() if h),
    }
    return matched, counts


def join_catalog(
    events: pd.DataFrame, items: pd.DataFrame | None, catalog: pd.DataFrame, report: ImportReport
) -> pd.DataFrame:
    """The items frame with the catalog's fields over the importer's own, for the items the
    catalog names (by id, else by title, see the module's notes)."""
    known = set(events["item"])
    catalog = catalog.copy()
    if not known & set(catalog["item"]) and items is not None:
        titles = dict(zip(items["item"], items["title"], strict=True))
        if not any(titles.values()):
            report.note(
                "catalog: its ids name none of the imported items, and the items have no titles"
                " to match it by: not joined"
            )
            return items
        matched, counts = match_titles(
            dict(zip(catalog["item"], catalog["title"], strict=True)), titles
        )
        report.note(
            f"catalog: ids differ from the events'; matched by title: {counts['matched']:,} of"
            f" {len(catalog):,} (ambiguous {counts['ambiguous']:,}, unmatched"
            f" {counts['unmatched']:,}); unmatched items keep their own fields"
        )
        catalog = catalog[catalog["item"].isin(matched)]
        catalog = catalog.assign(item=catalog["item"].map(matched))
    if items is None:
        return catalog
    rows = {row["item"]: row for row in items.to_dict("records")}
    for row in catalog.to_dict("records"):
        target = rows.setdefault(row["item"], {"item": row["item"]})
        for column, value in row.items():
            if _present(value) or column not in target:
                target[column] = value
    return pd.DataFrame(list(rows.values()), columns=list(dict.fromkeys([*items, *catalog])))


def _present(value: object) -> bool:
    """A catalog field worth copying over the importer's: not empty, not missing."""
    if isinstance(value, float):
        return not pd.isna(value)
    return bool(value) if isinstance(value, str | list | tuple) else value is not None


__all__ = ["join_catalog", "match_titles", "normalise_title"]
