"""Importers: column mapping, timestamps, bad-row reporting, Parquet, sequences, real datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import NO_ITEM
from driftrec.data.importers import read_events, read_items
from driftrec.data.loaders import detect_format, load_dataset
from driftrec.data.movielens import read_movielens, read_movielens_100k, read_movielens_latest
from driftrec.data.report import ImportReport
from driftrec.data.sequences import read_sequences
from driftrec.errors import DataFormatError
from driftrec.text.items import item_texts

DATA = Path(__file__).parents[1].parent / "shared" / "data"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def consistent(report: ImportReport) -> bool:
    return report.rows_read == report.rows_imported + sum(report.skipped.values())


# ---------------------------------------------------------------------------------- columns
def test_default_columns_are_found_case_insensitively(tmp_path: Path) -> None:
    path = write(
        tmp_path / "log.csv",
        "CustomerID,Product_ID,Event_Time,Action,Rating,Comment\n"
        "c1,p1,1600000000,View,,\n"
        "c1,p2,1600000100,purchase,5,great\n",
    )
    events, report = read_events(path)
    assert list(events.columns) == ["user", "item", "timestamp", "event", "value", "text"]
    assert events["user"].tolist() == ["c1", "c1"]
    assert events["item"].tolist() == ["p1", "p2"]
    assert events["timestamp"].tolist() == [1600000000, 1600000100]
    assert events["event"].tolist() == ["view", "purchase"]  # event names are lower-cased
    assert events["value"].tolist() == [1.0, 5.0]  # an empty value means the default weight
    assert events["text"].tolist() == [None, "great"]
    assert events["timestamp"].dtype == np.int64
    assert any("had no value" in n for n in report.notes)


def test_mapping_overrides_defaults_and_event_type_fills_in(tmp_path: Path) -> None:
    path = write(tmp_path / "log.tsv", "who\twhat\twhen\tuser\n7\tA\t1700000000\tignored\n")
    events, _ = read_events(
        path, {"user": "who", "item": "WHAT", "timestamp": "when"}, event_type="click"
    )
    assert events[["user", "item", "event", "value"]].values.tolist() == [["7", "A", "click", 1.0]]


def test_mapping_to_a_missing_column_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,timestamp\n1,2,3\n")
    with pytest.raises(DataFormatError) as error:
        read_events(path, {"value": "stars"})
    message = str(error.value)
    assert "log.csv" in message and "'stars'" in message and "\n" not in message


def test_missing_required_column_is_a_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.csv", "a,item,timestamp\n1,2,3\n")
    with pytest.raises(DataFormatError) as error:
        read_events(path)
    message = str(error.value)
    assert message.startswith("ratings.csv: no column for 'user'")
    assert "user_id" in message and "found: a, item, timestamp" in message
    assert "\n" not in message
    assert isinstance(error.value, ValueError)


def test_separator_is_detected(tmp_path: Path) -> None:
    for sep in (",", "\t", ";", "|"):
        path = write(tmp_path / "log.txt", f"user{sep}item{sep}ts\nu 1{sep}i 2{sep}5\n")
        events, _ = read_events(path)
        assert events[["user", "item"]].values.tolist() == [["u 1", "i 2"]]


# ---------------------------------------------------------------------------------- timestamps
def test_iso_datetimes_are_utc_seconds(tmp_path: Path) -> None:
    path = write(
        tmp_path / "log.csv",
        "user,item,timestamp\n"
        "u,a,2021-03-04T12:00:00Z\n"
        "u,b,2021-03-04 12:00:00\n"
        "u,c,2021-03-04T14:00:00+02:00\n"
        "u,d,2021-03-04\n"
        "u,e,04 Mar 2021 12:00:00\n",
    )
    events, report = read_events(path)
    noon = 1614859200
    assert events["timestamp"].tolist() == [noon, noon, noon, noon - 12 * 3600, noon]
    assert report.rows_imported == 5


def test_millisecond_timestamps_are_detected_and_units_can_be_forced(tmp_path: Path) -> None:
    path = write(
        tmp_path / "log.csv", "user,item,timestamp\nu,a,1600000000123\nu,b,1600000001999\n"
    )
    events, report = read_events(path)
    assert events["timestamp"].tolist() == [1600000000, 1600000001]
    assert any("Unix ms" in n for n in report.notes)
    forced, _ = read_events(path, timestamp_unit="us")
    assert forced["timestamp"].tolist() == [1600000, 1600000]
    with pytest.raises(ValueError, match="timestamp_unit"):
        read_events(path, timestamp_unit="days")


# ---------------------------------------------------------------------------------- bad rows
def test_broken_rows_are_skipped_and_reported_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ratings.csv",
        b"userId,movieId,rating,timestamp\n"  # line 1
        b"1,10,4.0,964982703\n"  # 2 good
        b"2,11,3.5,yesterday-ish\n"  # 3 bad timestamp
        b",12,3,964982705\n"  # 4 missing user
        b"3,13,great,964982706\n"  # 5 non-numeric rating
        b"4,Caf\xe9,3,964982707\n"  # 6 latin-1 byte in a UTF-8 file
        b"5,15,3,964982708,extra\n"  # 7 too many fields
        b"6,16,2,964982709\n",  # 8 good
    )
    events, report = read_events(path)
    assert events["user"].tolist() == ["1", "6"]
    assert report.rows_read == 7 and report.rows_imported == 2 and consistent(report)
    found = {(e.line, e.reason) for e in report.examples}
    assert found == {
        (3, "unparsable_timestamp"),
        (4, "missing_user"),
        (5, "non_numeric_value"),
        (6, "invalid_encoding"),
        (7, "wrong_field_count"),
    }
    assert all(e.file == "ratings.csv" for e in report.examples)
    by_line = {e.line: e for e in report.examples}
    assert by_line[3].field == "timestamp" and "yesterday-ish" in by_line[3].raw
    assert by_line[5].field == "value"
    assert "Caf" in by_line[6].raw
    text = "\n".join(report.lines())
    assert "ratings.csv:7" in text and "wrong_field_count" in text
    assert report.to_dict()["rows_skipped"] == 5


def test_examples_are_capped_but_every_row_is_counted(tmp_path: Path) -> None:
    rows = "".join(f"u{i},i{i},{'bad' if i % 2 else 1600000000 + i}\n" for i in range(100))
    events, report = read_events(write(tmp_path / "log.csv", "user,item,timestamp\n" + rows))
    assert len(events) == 50 and report.skipped == {"unparsable_timestamp": 50}
    assert len(report.examples) == 20 and report.examples[0].line == 3
    long = "x" * 500
    events, report = read_events(write(tmp_path / "long.csv", f"user,item,ts\n{long},i,bad\n"))
    assert len(report.examples[0].raw) <= 120


def test_quoted_fields_with_newlines_keep_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "reviews.csv",
        'user,item,timestamp,review\nu1,i1,100,"fine, really"\n'
        'u2,i2,200,"two\nlines"\nu3,i3,bad,"x"\nu4,i4,400,"y"\n',
    )
    events, report = read_events(path)
    assert events["text"].tolist() == ["fine, really", "two\nlines", "y"]
    assert [(e.line, e.reason) for e in report.examples] == [(5, "unparsable_timestamp")]


def test_unclosed_quote_costs_one_line_not_the_rest_of_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "log.csv",
        b'\xef\xbb\xbfuser,item,timestamp\r\nu1,"oops,1\r\nu2,b,2\r\nu3,"c",3\r\n',
    )
    events, report = read_events(path)  # with a UTF-8 byte order mark and CRLF line ends
    assert events["user"].tolist() == ["u2", "u3"] and events["item"].tolist() == ["b", "c"]
    assert [(e.line, e.reason) for e in report.examples] == [(2, "malformed_quoting")]


def test_text_only_search_rows_import_without_item(tmp_path: Path) -> None:
    path = write(
        tmp_path / "search.csv",
        "user,item,timestamp,event,query\n"
        "u1,,100,search,red shoes\n"
        "u1,s9,110,click,\n"
        "u2,,120,search,\n",  # no item and no text: skipped
    )
    events, report = read_events(path)
    assert events["item"].tolist() == [None, "s9"]
    assert events["text"].tolist() == ["red shoes", None]
    assert report.skipped == {"missing_item": 1} and report.examples[0].line == 4
    dataset = load_dataset(path)
    assert (dataset.events["item"] == NO_ITEM).sum() == 1
    assert dataset.summary()["text_only_events"] == 1


def test_large_csv_with_millisecond_times_imports_every_row(tmp_path: Path) -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 5000, n),
            "item_id": rng.integers(0, 20000, n),
            "timestamp": 1_600_000_000_000 + np.arange(n) * 1000,
            "rating": rng.integers(1, 6, n),
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    events, report = read_events(path)
    assert report.rows_imported == n and events["timestamp"].iloc[-1] == 1_600_000_000 + n - 1


# ---------------------------------------------------------------------------------- other formats
def test_parquet_import_handles_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "item_id": [10.0, np.nan, 30.0],  # a float id column with a gap
            "ts": pd.to_datetime(["2021-03-04 12:00", "2021-03-04 13:00", None]),
            "query": [None, "lamp", None],
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    events, report = read_events(path)
    assert events["user"].tolist() == ["1", "2"]
    assert events["item"].tolist() == ["10", None]
    assert events["text"].tolist() == [None, "lamp"]
    assert events["timestamp"].tolist() == [1614859200, 1614862800]
    assert report.skipped == {"missing_timestamp": 1} and report.examples[0].line == 3


def test_item_catalog_splits_categories_and_reports_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path / "items.csv",
        'item_id,name,description,genre,tags\nA,Lamp,"A lamp, bright",home|light,warm\n'
        'B,Desk,,office,\nA,Again,,x,\nC,Chair,,"seat, office",wood|oak\n',
    )
    items, report = read_items(path)
    assert items["item"].tolist() == ["A", "B", "C"]
    assert items["title"].tolist() == ["Lamp", "Desk", "Chair"]
    assert items["text"].tolist() == ["A lamp, bright", "", ""]
    assert items["categories"].tolist() == [["home", "light"], ["office"], ["seat", "office"]]
    assert items["tags"].tolist() == [["warm"], [], ["wood", "oak"]]
    assert report.skipped == {"duplicate_item": 1} and report.examples[0].line == 4


def test_sequences_format_uses_positions_and_reports_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "seq.txt", "1 5 6 7\n2 6\n3\n\n4 9 9\n")
    events, report = read_sequences(path)
    assert events["user"].tolist() == ["1", "1", "1", "2", "4", "4"]
    assert events["item"].tolist() == ["5", "6", "7", "6", "9", "9"]
    assert events["timestamp"].tolist() == [0, 1, 2, 0, 0, 1]
    assert set(events["event"]) == {"interaction"} and set(events["value"]) == {1.0}
    assert [(e.line, e.reason) for e in report.examples] == [(3, "no_items"), (4, "empty_line")]
    assert report.rows_read == 5 and report.rows_imported == 3 and consistent(report)
    assert detect_format(path) == "sequences"
    dataset = load_dataset(path)
    assert dataset.info["has_timestamps"] is False and dataset.n_users == 3


def test_load_dataset_dispatches_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "user,item,timestamp\nu1,a,10\nu1,a,10\nu2,b,20\n")
    dataset = load_dataset(path, name="shop")
    assert dataset.name == "shop" and dataset.n_events == 2
    assert dataset.info["preprocessing"]["duplicates_removed"] == 1
    assert dataset.info["import_report"]["rows_read"] == 3
    assert dataset.info["has_timestamps"] is True
    saved = dataset.save(tmp_path / "saved")
    assert detect_format(saved) == "dataset"
    assert load_dataset(saved).info["import_report"]["rows_imported"] == 3
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(DataFormatError, match="empty-dir"):
        load_dataset(tmp_path / "empty-dir")
    with pytest.raises(DataFormatError, match=r"missing\.csv"):
        load_dataset(tmp_path / "missing.csv")
    with pytest.raises(DataFormatError, match="nothing-here"):
        read_movielens(tmp_path / "nothing-here")


# ---------------------------------------------------------------------------------- real data
def real(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.realdata
def test_movielens_100k() -> None:
    events, items, users, report = read_movielens_100k(real("ml-100k"))
    assert len(events) == 100_000 and events["user"].nunique() == 943
    assert len(items) == 1682 and users is not None and len(users) == 943
    assert report.rows_imported == report.rows_read and not report.skipped
    toy = items[items["item"] == "1"].iloc[0]
    assert toy["title"] == "Toy Story (1995)"
    assert "Animation" in toy["categories"] and "unknown" not in toy["categories"]
    assert toy["text"] == "Released 1995."  # the rest of what a model reads has its own column
    assert set(events["event"]) == {"rating"} and set(events["value"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    dataset = load_dataset(real("ml-100k"))
    assert (dataset.n_users, dataset.n_items, dataset.n_events) == (943, 1682, 100_000)
    assert item_texts(dataset)[int(np.flatnonzero(dataset.item_ids == "1")[0])] == (
        "Toy Story (1995). Categories: Animation, Children's, Comedy. Released 1995."
    )


@pytest.mark.realdata
def test_movielens_latest_small() -> None:
    events, items, users, report = read_movielens_latest(real("ml-latest-small"))
    assert users is None and len(events) == 100_836 and events["user"].nunique() == 610
    assert len(items) == 9742 and events["item"].nunique() == 9724
    assert not report.skipped
    toy = items[items["item"] == "1"].iloc[0]
    assert toy["year"] == 1995 and "1995" not in toy["categories"]
    assert toy["text"] == "Released 1995." and toy["tags"]
    assert not any("(no genres listed)" in c for c in items["categories"])
    dataset = load_dataset(real("ml-latest-small"))
    assert (dataset.n_users, dataset.n_items, dataset.n_events) == (610, 9742, 100_836)
    text = item_texts(dataset)[int(np.flatnonzero(dataset.item_ids == "1")[0])]
    assert text.startswith("Toy Story (1995). Categories: Adventure, Animation, Children, Comedy,")
    assert "Released 1995. Tags: pixar" in text


@pytest.mark.realdata
def test_amazon_beauty_sequences() -> None:
    events, report = read_sequences(real("amazon-beauty") / "Beauty.txt")
    assert events["user"].nunique() == 22_363 and events["item"].nunique() == 12_101
    assert len(events) == 198_502 and not report.skipped
    dataset = load_dataset(real("amazon-beauty") / "Beauty.txt")
    assert (dataset.n_users, dataset.n_items, dataset.n_events) == (22_363, 12_101, 198_502)
    assert dataset.info["has_timestamps"] is False


def _write_rechorus(directory: Path) -> Path:
    directory.mkdir()
    (directory / "train.csv").write_text(
        "user_id\titem_id\ttime\n1\t1\t100\n2\t2\t100\n1\t2\t200\n2\t3\t250\n"
    )
    negatives = "[3, 1, 2]"
    (directory / "dev.csv").write_text(
        f"user_id\titem_id\ttime\tneg_items\n1\t3\t300\t{negatives}\n2\t1\t300\t{negatives}\n"
    )
    (directory / "test.csv").write_text(
        f"user_id\titem_id\ttime\tneg_items\n1\t4\t300\t{negatives}\n2\t4\tbad\t{negatives}\n"
    )
    (directory / "Shop.item2index").write_text("A1\t1\nA2\t2\nA3\t3\nA4\t4\n")
    (directory / "Shop.text").write_text(
        "id\ttext\nA1\tRed Pen Fine Point Pens Acme\nA2\tBlue Stapler Staplers Bolt\n"
        "A3\tPaper Clips 100 Acme\nA4\tDesk Lamp &amp; Bulb Lumo\n"
    )
    (directory / "item_meta.csv").write_text("item_id\ti_category\n1\t2\n2\t0\n3\t2\n4\t5\n")
    return directory


def test_a_rechorus_directory_is_one_log_with_real_ids_times_and_titles(tmp_path: Path) -> None:
    directory = _write_rechorus(tmp_path / "shop")
    assert detect_format(directory) == "rechorus"
    dataset = load_dataset(directory)
    assert dataset.info["has_timestamps"]
    report = dataset.info["import_report"]
    assert report["rows_read"] == 8 and report["skipped"] == {"unparsable_row": 1}
    events = dataset.events
    user1 = events[events["user"] == dataset.user_ids.tolist().index("1")]
    # train, then dev, then test: the equal times of user 1's last two keep that order
    assert [dataset.item_ids[i] for i in user1["item"]] == ["A1", "A2", "A3", "A4"]
    titles = dict(zip(dataset.item_ids, dataset.items["title"], strict=True))
    assert titles["A2"] == "Blue Stapler Staplers Bolt"
    categories = dict(zip(dataset.item_ids, dataset.items["categories"], strict=True))
    assert list(categories["A1"]) == ["category 2"] and list(categories["A2"]) == []


def _write_json_sequences(directory: Path) -> Path:
    import json

    directory.mkdir()
    (directory / "Shop.inter.json").write_text(
        json.dumps({"0": [0, 1, 2, 3], "1": [1, 2], "2": []})
    )
    fields = {
        "0": {"title": "Red Pen Fine Point", "description": "Smooth ink.", "brand": "Acme",
              "categories": "Office, Writing, Pens"},
        "1": {"title": "Blue Stapler", "description": "", "brand": "Bolt",
              "categories": "Office, Staplers"},
        "2": {"title": "Paper Clips", "description": "Steel.", "brand": "Acme", "categories": ""},
        "3": {"title": "Desk Lamp & Bulb", "description": "", "brand": "", "categories": "Home"},
    }  # fmt: skip
    (directory / "Shop.item.json").write_text(json.dumps(fields))
    return directory


def test_a_json_sequence_directory_reads_positions_and_item_fields(tmp_path: Path) -> None:
    directory = _write_json_sequences(tmp_path / "rich")
    assert detect_format(directory) == "json-sequences"
    dataset = load_dataset(directory)
    assert not dataset.info["has_timestamps"] and dataset.n_events == 6
    assert dataset.info["import_report"]["skipped"] == {"no_items": 1}
    items = dataset.items.assign(item=dataset.item_ids)
    first = items[items["item"] == "0"].iloc[0]
    assert first["title"] == "Red Pen Fine Point" and first["text"] == "Smooth ink. Acme"
    assert list(first["categories"]) == ["Office", "Writing", "Pens"]


def test_a_catalog_with_other_ids_is_joined_by_title(tmp_path: Path) -> None:
    """The rich copy's fields reach the timestamped copy's items by title: a title that begins
    the other's (title + category leaf + brand), HTML entities and case aside."""
    timed = _write_rechorus(tmp_path / "shop")
    rich = _write_json_sequences(tmp_path / "rich")
    dataset = load_dataset(timed, items=rich)
    items = dataset.items.assign(item=dataset.item_ids).set_index("item")
    assert items.loc["A1", "title"] == "Red Pen Fine Point"
    assert items.loc["A1", "text"] == "Smooth ink. Acme"
    assert list(items.loc["A2", "categories"]) == ["Office", "Staplers"]
    assert items.loc["A4", "title"] == "Desk Lamp & Bulb"  # "&amp;" decoded to match
    assert "matched by title: 4 of 4" in " ".join(dataset.info["import_report"]["notes"])


def test_titles_match_only_when_unique_both_ways() -> None:
    from driftrec.data.catalogs import match_titles

    items = {"a": "Blue Pen Acme", "b": "Blue Pen Fine Acme", "c": "Red Pen Acme"}
    matched, counts = match_titles({"x": "Blue Pen", "y": "Red Pen", "z": "Green Pen"}, items)
    assert matched == {"y": "c"}  # "Blue Pen" begins two titles
    assert counts == {"matched": 1, "ambiguous": 1, "unmatched": 1}
    matched, _ = match_titles({"x": "Red Pen", "w": "red pen"}, items)
    assert matched == {}  # two catalog titles claim one item


@pytest.mark.realdata
def test_amazon_office_both_copies_and_their_join() -> None:
    """The timestamped copy with the rich copy's text joined by title: every count the data's
    README gives, and the join verified by the users' sequences, which the two copies share."""
    import json

    from driftrec.data.catalogs import match_titles
    from driftrec.data.loaders import read_catalog
    from driftrec.data.rechorus import read_rechorus

    office = real("amazon-office-2014")
    joined = load_dataset(office / "timestamped", items=office / "rich-text")
    assert (joined.n_users, joined.n_items, joined.n_events) == (4_905, 2_420, 53_258)
    times = joined.events["timestamp"]
    assert (int(times.min()), int(times.max())) == (970_185_600, 1_406_073_600)  # 2000-09-29..
    assert sum(1 for t in joined.items["text"] if t) > 2_200  # descriptions and brands
    rich = load_dataset(office / "rich-text")
    assert (rich.n_users, rich.n_items, rich.n_events) == (4_905, 2_420, 53_258)
    events, items, _ = read_rechorus(office / "timestamped")
    catalog, _ = read_catalog(office / "rich-text")
    mapping, counts = match_titles(
        dict(zip(catalog["item"], catalog["title"], strict=True)),
        dict(zip(items["item"], items["title"], strict=True)),
    )
    assert counts["matched"] >= 2_400
    timed = {tuple(g["item"]) for _, g in events.groupby("user", sort=False)}
    sequences = json.loads((office / "rich-text" / "Office.inter.json").read_text())
    mapped = [[mapping.get(str(i)) for i in s] for s in sequences.values()]
    full = [tuple(s) for s in mapped if all(s)]
    assert len(full) >= 4_600 and all(s in timed for s in full)  # no wrong match
