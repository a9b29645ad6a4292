"""MovieLens importers: the ml-100k raw files and the ml-latest(-small) CSV layout.

Both return raw frames with external ids as strings (what `Dataset.from_frames` takes). Items
keep their title, genres (``categories``), year and, for ml-latest, user tags in columns; the
``text`` column holds the release year as a sentence ("Released 1995."), and the text a language
model reads ("Toy Story (1995). Categories: Animation, Children's, Comedy. Released 1995.") is
composed from all of them in one place, `text.items.item_text`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from driftrec.data.fields import clean_strings
from driftrec.data.importers import read_events, read_items, reject_repeated_items
from driftrec.data.report import ImportReport
from driftrec.data.tables import RawTable, read_table
from driftrec.errors import DataFormatError

# The order of the 19 genre flags in u.item (u.genre holds the same list; it is read when present).
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
MAX_AGE = 150
NO_GENRES = "(no genres listed)"  # ml-latest's marker for a movie without genres
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_DATE_YEAR = re.compile(r"(\d{4})\s*$")


def _require(directory: Path, *names: str) -> None:
    for name in names:
        if not (directory / name).is_file():
            raise DataFormatError(f"{directory / name}: missing (needed for a MovieLens import)")


def title_year(title: str) -> int | None:
    """The year in a MovieLens title's trailing "(1995)" (or "(2006-2007)": the first year)."""
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else None


def release_text(year: int | None) -> str:
    """What a movie's ``text`` holds: the one thing the catalog knows beyond its title, genres
    and tags, which `text.items.item_text` writes from their own columns."""
    return "" if year is None else f"Released {year}."


def _years(values: np.ndarray, pattern: re.Pattern[str]) -> list[int | None]:
    found = [pattern.search(v) if v else None for v in values]
    return [int(m.group(1)) if m else None for m in found]


# ---------------------------------------------------------------------------------- ml-100k
def _read_genres(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from u.genre ("name|index" lines); the built-in list if absent."""
    if not path.is_file():
        return GENRES_100K
    table = read_table(path, sep="|", encoding="latin-1", names=["name", "index"], quoting=False)
    index = pd.to_numeric(pd.Series(table.frame["index"], dtype=object), errors="coerce")
    if index.isna().any() or sorted(index.astype(int)) != list(range(len(index))):
        raise DataFormatError(f"{path.name}: column 'index' must number the genres 0..n-1")
    names = clean_strings(table.frame["name"])
    return tuple(str(n) for n in names[np.argsort(index.to_numpy(int))])


def _read_100k_items(path: Path, genres: tuple[str, ...]) -> tuple[pd.DataFrame, ImportReport]:
    """u.item: id | title | release date | video release date | IMDb URL | one flag per genre."""
    names = ["item", "title", "release_date", "video_release_date", "url", *genres]
    table = read_table(path, sep="|", encoding="latin-1", names=names, quoting=False)
    frame = table.frame
    item = clean_strings(frame["item"])
    table.reject(pd.isna(item), "missing_item", "item")
    reject_repeated_items(table, item)
    flags = np.column_stack([frame[g].to_numpy(object) for g in genres]).astype(str)
    valid = np.isin(flags, ["0", "1"]).all(axis=1)
    table.reject(~valid, "bad_genre_flag", "genres", lambda r: "genre flags must be 0 or 1")
    keep = ~table.bad
    titles = clean_strings(frame["title"])[keep]
    titles[pd.isna(titles)] = ""
    released = _years(clean_strings(frame["release_date"])[keep], _DATE_YEAR)
    years = [r if r is not None else title_year(t) for r, t in zip(released, titles, strict=True)]
    # "unknown" is a flag for "no genre known", not a genre: it is left out of categories.
    named = [g != "unknown" for g in genres]
    categories = [
        [g for g, on, use in zip(genres, row, named, strict=True) if on == "1" and use]
        for row in flags[keep]
    ]
    items = pd.DataFrame(
        {
            "item": pd.Series(item[keep], dtype=object),
            "title": pd.Series(titles, dtype=object),
            "text": [release_text(y) for y in years],
            "categories": pd.Series(categories, dtype=object),
            "year": pd.array(years, dtype="Int64"),
        }
    )
    return items, table.report()


def _read_100k_users(path: Path) -> tuple[pd.DataFrame, ImportReport]:
    """u.user: id | age | gender | occupation | zip code."""
    names = ["user", "age", "gender", "occupation", "zip"]
    table = read_table(path, sep="|", encoding="latin-1", names=names, quoting=False)
    user = clean_strings(table.frame["user"])
    table.reject(pd.isna(user), "missing_user", "user")
    age = pd.to_numeric(pd.Series(table.frame["age"], dtype=object), errors="coerce")
    age = age.to_numpy(np.float64, na_value=np.nan)
    valid = (age >= 0) & (age <= MAX_AGE) & (age == np.round(age))  # False for NaN
    table.reject(~valid, "bad_age", "age", lambda r: f"an age must be a whole number 0..{MAX_AGE}")
    keep = ~table.bad
    users = pd.DataFrame(
        {
            "user": pd.Series(user[keep], dtype=object),
            "age": age[keep].astype(np.int64),
            **{
                col: pd.Series(clean_strings(table.frame[col])[keep], dtype=object)
                for col in ("gender", "occupation", "zip")
            },
        }
    )
    return users, table.report()


def read_movielens_100k(
    directory: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, ImportReport]:
    """Events (event "rating", value = the 1-5 rating), items and users of an ml-100k directory.

    Reads u.data (tab separated user, item, rating, Unix seconds), u.item (latin-1, "|"
    separated, genre flags in u.genre order) and u.user (age, gender, occupation, zip) if present.
    """
    directory = Path(directory)
    _require(directory, "u.data", "u.item")
    events, report_events = read_events(
        directory / "u.data",
        {"value": "rating"},
        event_type="rating",
        timestamp_unit="s",
        sep="\t",
        names=["user", "item", "rating", "timestamp"],
    )
    items, report_items = _read_100k_items(
        directory / "u.item", _read_genres(directory / "u.genre")
    )
    report = ImportReport(source=directory.name).merge(report_events).merge(report_items)
    users = None
    if (directory / "u.user").is_file():
        users, report_users = _read_100k_users(directory / "u.user")
        report.merge(report_users)
    return events, items, users, report


# ---------------------------------------------------------------------------------- ml-latest
def _read_tags(path: Path, known_items: set[str]) -> tuple[dict[str, list[str]], ImportReport]:
    """Distinct tags per movie from tags.csv, most often applied first (ties: first seen)."""
    table: RawTable = read_table(path)
    lower = {c.lower(): c for c in table.columns}
    for needed in ("movieid", "tag"):
        if needed not in lower:
            raise DataFormatError(
                f"{path.name}: no column {needed!r} (found: {', '.join(table.columns)})"
            )
    item = clean_strings(table.frame[lower["movieid"]])
    tag = clean_strings(table.frame[lower["tag"]])
    table.reject(pd.isna(item), "missing_item", "item")
    table.reject(pd.isna(tag), "missing_tag", "tag")
    unknown = np.array([i is not None and i not in known_items for i in item], dtype=bool)
    table.reject(unknown, "unknown_item", "item", lambda r: "movie not in movies.csv")
    counts: dict[str, Counter[str]] = {}
    spelling: dict[tuple[str, str], str] = {}
    for i, t in zip(item[~table.bad], tag[~table.bad], strict=True):
        key = t.lower()
        spelling.setdefault((i, key), t)
        counts.setdefault(i, Counter())[key] += 1
    tags = {
        i: [spelling[(i, key)] for key, _ in counter.most_common()] for i, counter in counts.items()
    }
    return tags, table.report()


def read_movielens_latest(
    directory: str | Path, include_tags: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, None, ImportReport]:
    """Events (event "rating", value = the 0.5-5 rating) and items of an ml-latest directory.

    Reads ratings.csv (userId, movieId, rating, timestamp), movies.csv (movieId, title, genres
    "a|b", "(no genres listed)" for none; every listed movie is kept, rated or not) and, when
    ``include_tags``, tags.csv: each movie's tags go into its text and a ``tags`` column. Tags are
    not added as events: a tagger has almost always rated the same movie, so a tag event would
    count one interaction twice. ml-latest has no user attributes, hence users is None.
    """
    directory = Path(directory)
    _require(directory, "ratings.csv", "movies.csv")
    events, report_events = read_events(
        directory / "ratings.csv", event_type="rating", timestamp_unit="s"
    )
    items, report_items = read_items(directory / "movies.csv", {"categories": "genres"})
    report = ImportReport(source=directory.name).merge(report_events).merge(report_items)
    tags: dict[str, list[str]] = {}
    if include_tags and (directory / "tags.csv").is_file():
        tags, report_tags = _read_tags(directory / "tags.csv", set(items["item"]))
        report.merge(report_tags)
    genres = [[g for g in c if g != NO_GENRES] for c in items["categories"]]
    years = [title_year(t) for t in items["title"]]
    item_tags = [tags.get(i, []) for i in items["item"]]
    items["categories"] = pd.Series(genres, dtype=object, index=items.index)
    items["year"] = pd.array(years, dtype="Int64")
    items["tags"] = pd.Series(item_tags, dtype=object, index=items.index)
    items["text"] = [release_text(y) for y in years]
    return events, items, None, report


def read_movielens(
    directory: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, ImportReport]:
    """Read whichever MovieLens layout ``directory`` holds (ml-100k or ml-latest)."""
    layout = movielens_layout(directory)
    if layout == "ml-100k":
        return read_movielens_100k(directory)
    if layout == "ml-latest":
        return read_movielens_latest(directory)
    raise DataFormatError(
        f"{directory}: not a MovieLens directory (expected u.data and u.item, "
        f"or ratings.csv and movies.csv)"
    )


def movielens_layout(directory: str | Path) -> str | None:
    """ "ml-100k", "ml-latest" or None, from the files ``directory`` holds."""
    directory = Path(directory)
    if (directory / "u.data").is_file():
        return "ml-100k"
    if (directory / "ratings.csv").is_file() and (directory / "movies.csv").is_file():
        return "ml-latest"
    return None
