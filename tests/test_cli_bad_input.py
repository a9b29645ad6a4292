"""Broken and unusual input through the `driftrec` command, as a new user or an adversary tries it.

Every case ends in a correct import with each skipped row counted and listed, or in one `error:`
line naming the file, line or field with exit code 2; a bug is an internal error with exit code 1,
never "bad input"; nothing under a pseudonymised dataset holds a raw user id.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clitools import assert_input_error, cli, flat, ok

from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticConfig, generate

SECRET_VAR = "DRIFTREC_TEST_BAD_INPUT_SECRET"
TINY_ALS = ["-p", "factors=8", "-p", "iterations=3"]
RAW_USERS = ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def files_holding(directory: Path, needles: tuple[str, ...]) -> list[str]:
    """Every (file, needle) pair where a raw id appears in the bytes of a file under directory."""
    return [
        f"{path.name}: {needle}"
        for path in directory.rglob("*")
        if path.is_file()
        for needle in needles
        if needle.encode() in path.read_bytes()
    ]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SyntheticConfig(
        n_users=30, n_items=50, events_per_user=(12, 20), min_segment=4, seed=3
    )
    return generate(config).save(tmp_path_factory.mktemp("synthetic") / "data")


# ---------------------------------------------------------------------------------- 1. privacy
def test_pseudonymised_import_and_model_hold_no_raw_user_id(tmp_path: Path) -> None:
    alice, bob, carol, dave = RAW_USERS
    rows = [f"{alice},i{i % 4},{1_700_000_000 + i},4" for i in range(6)]
    rows += [f"{bob},i{i % 3 + 3},{1_700_000_100 + i},3" for i in range(5)]
    rows += [f"{carol},i1,not-a-time,5", f"{dave},i2,1700000300"]  # skipped: bad time, 3 fields
    source = write(tmp_path / "log.csv", "user,item,timestamp,rating\n" + "\n".join(rows) + "\n")
    data, model = tmp_path / "ds", tmp_path / "model"
    env = {SECRET_VAR: "k3y"}
    text = flat(ok(cli("import", source, "-o", data, "--secret-env", SECRET_VAR, env=env)))
    assert "2 x" not in text and "1 x unparsable_timestamp" in text  # counted, line listed
    assert "log.csv:13" in text and carol not in text
    ok(cli("train", data, "-m", "als", "-o", model, *TINY_ALS))
    assert files_holding(data, RAW_USERS) == [] and files_holding(model, RAW_USERS) == []
    # a raw id is looked up with the same secret; without it, the error says how
    out = ok(cli("recommend", model, "--user", alice, "--secret-env", SECRET_VAR, env=env))
    assert alice in out
    assert_input_error(cli("recommend", model, "--user", alice), "pseudonymised", "--secret-env")


def test_pseudonymised_sequence_file_keeps_no_raw_id_of_a_skipped_line(tmp_path: Path) -> None:
    source = write(tmp_path / "seq.txt", "alice@example.com i1 i2 i3\nbob@example.com\nc i1 i2\n")
    data = tmp_path / "ds"
    env = {SECRET_VAR: "k3y"}
    text = flat(ok(cli("import", source, "-o", data, "--secret-env", SECRET_VAR, env=env)))
    assert "seq.txt:2: no_items" in text
    assert files_holding(data, ("alice@example.com", "bob@example.com")) == []


def test_pseudonymisation_drops_user_attributes_unless_asked(tmp_path: Path) -> None:
    source = tmp_path / "ml"
    source.mkdir()
    write(
        source / "u.data",
        "".join(f"{u}\t{i}\t4\t{881250000 + i}\n" for u in (7, 8) for i in (1, 2)),
    )
    (source / "u.item").write_text(
        "".join(f"{i}|Film {i} (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n" for i in (1, 2))
    )
    write(source / "u.user", "7|24|M|technician|85711\n8|53|F|other|94043\n")
    env = {SECRET_VAR: "k3y"}
    args = ("import", source, "--secret-env", SECRET_VAR)
    text = flat(ok(cli(*args, "-o", tmp_path / "dropped", env=env)))
    assert "user attributes dropped: age, gender, occupation, zip" in text
    assert list(Dataset.load(tmp_path / "dropped").users.columns) == []
    assert files_holding(tmp_path / "dropped", ("85711", "technician")) == []
    ok(cli(*args, "-o", tmp_path / "kept", "--keep-user-attributes", env=env))
    assert "zip" in Dataset.load(tmp_path / "kept").users.columns
    assert_input_error(
        cli("import", source, "-o", tmp_path / "x", "--keep-user-attributes"), "--secret-env"
    )


# ---------------------------------------------------------------------------------- 2, 3. values
def test_values_and_times_that_do_not_fit_are_bad_rows_with_their_lines(tmp_path: Path) -> None:
    source = write(
        tmp_path / "log.csv",
        "user,item,timestamp,rating\n"
        "u1,i1,1700000000,5\n"
        "u1,i2,1700000100,1e308\n"  # 3: beyond float32
        "u2,i1,3000-01-01,4\n"  # 4: a date beyond 2262
        "u2,i2,32503680000,4\n"  # 5: the same instant as a number
        "u2,i3,1700000200,-1e39\n"  # 6: beyond float32, negative
        "u3,i1,1700000300,2\n",
    )
    text = flat(ok(cli("import", source, "-o", tmp_path / "ds")))
    assert "2 x timestamp_out_of_range" in text and "2 x value_out_of_range" in text
    for line in (3, 4, 5, 6):
        assert f"log.csv:{line}:" in text
    dataset = Dataset.load(tmp_path / "ds")
    assert dataset.n_events == 2 and dataset.events["value"].abs().max() == 5
    records = tmp_path / "r.json"
    ok(cli("evaluate", tmp_path / "ds", "-m", "bias", "--json", records))


# ---------------------------------------------------------------------------------- 4. detection
def test_space_separated_log_with_a_header_imports_as_events(tmp_path: Path) -> None:
    source = write(tmp_path / "log.txt", "user item timestamp\n1  2 881250949\n1 3 881250950\n")
    ok(cli("import", source, "-o", tmp_path / "ds"))
    dataset = Dataset.load(tmp_path / "ds")
    assert sorted(dataset.item_ids) == ["2", "3"] and dataset.n_users == 1
    assert dataset.events["timestamp"].tolist() == [881250949, 881250950]


def test_ambiguous_space_separated_file_asks_for_the_format(tmp_path: Path) -> None:
    source = write(tmp_path / "log.txt", "1 2 881250949\n1 3 881250950\n2 3 881250951\n")
    assert_input_error(cli("import", source, "-o", tmp_path / "ds"), "log.txt", "--format")
    assert not (tmp_path / "ds").exists()
    ok(cli("import", source, "-o", tmp_path / "seq", "--format", "sequences"))


def test_a_sequence_file_takes_an_item_catalog(tmp_path: Path) -> None:
    """`import seq.txt --items items.csv`: the catalog's titles and categories name the
    sequences' items (what text features read); items the catalog lacks keep no text."""
    source = write(tmp_path / "seq.txt", "u1 a b c d\nu2 b c\nu3 c e\n")
    items = write(
        tmp_path / "items.csv",
        "item,title,categories\na,Apple pie,Food|Sweet\nb,Banana bread,Food\nc,Cherry jam,Food\n"
        "d,Dish soap,Home\n",
    )
    ok(cli("import", source, "--items", items, "-o", tmp_path / "ds"))
    dataset = Dataset.load(tmp_path / "ds")
    titles = dict(zip(dataset.item_ids, dataset.items["title"], strict=True))
    assert titles["a"] == "Apple pie" and titles["d"] == "Dish soap" and titles["e"] == ""
    categories = dict(zip(dataset.item_ids, dataset.items["categories"], strict=True))
    assert list(categories["a"]) == ["Food", "Sweet"]
    assert dataset.n_events == 8 and dataset.info["format"] == "sequences"


def test_header_line_in_a_sequence_file_is_an_error(tmp_path: Path) -> None:
    source = write(tmp_path / "seq.txt", "user item timestamp\n1 2 3 4\n2 3\n")
    result = cli("import", source, "-o", tmp_path / "ds", "--format", "sequences")
    assert_input_error(result, "seq.txt", "line 1", "header", "--format events")


# (5. seen items: tests/test_model_hardening.py)


# ---------------------------------------------------------------------------------- 6. empty data
@pytest.mark.parametrize(
    ("content", "options", "needles"),
    [
        ("user,item,timestamp\n", [], ("log.csv", "no rows")),
        ("user,item,timestamp\nu1,i1,x\nu2,i2,y\n", [], ("every one of the 2", "unparsable")),
        ("user,item,timestamp\nu1,i1,1\nu2,i2,2\n", ["--min-user", "2"], ("k-core", "--min-user")),
    ],
    ids=["header-only", "every-row-skipped", "k-core-removes-all"],
)
def test_an_import_that_keeps_nothing_is_an_error(
    tmp_path: Path, content: str, options: list[str], needles: tuple[str, ...]
) -> None:
    source = write(tmp_path / "log.csv", content)
    assert_input_error(cli("import", source, "-o", tmp_path / "ds", *options), *needles)
    assert not (tmp_path / "ds").exists()


def test_evaluating_without_test_users_says_so_in_the_table(tmp_path: Path) -> None:
    source = write(tmp_path / "log.csv", "user,item,timestamp\nu1,i1,1\nu1,i2,2\nu2,i1,3\n")
    ok(cli("import", source, "-o", tmp_path / "ds"))
    result = cli("evaluate", tmp_path / "ds", "-m", "pop", "--json", tmp_path / "r.json")
    text = flat(ok(result))
    assert "test users" in text and "no test users for pop" in text and "3 item events" in text
    assert "Warning" not in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())[0]["n_test_users"] == 0
    assert_input_error(cli("tune", tmp_path / "ds", "-m", "als"), "no validation users")


# ---------------------------------------------------------------------------------- 7. tracebacks
def test_output_over_an_existing_file_is_a_one_line_error(data_dir: Path, tmp_path: Path) -> None:
    taken = write(tmp_path / "taken", "x")
    assert_input_error(cli("import", data_dir, "-o", taken), "taken", "not a directory")
    assert_input_error(cli("import", data_dir, "-o", taken / "below"), "not a directory")


def test_a_bug_is_an_internal_error_not_bad_input(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import driftrec.cli.main as main

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("NDCG@10")  # the kind of error `guarded` used to call bad input

    monkeypatch.setattr(main, "train_model", broken)
    monkeypatch.delenv("DRIFTREC_DEBUG", raising=False)
    result = cli("train", data_dir, "-m", "pop", "-o", tmp_path / "m")
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("error: internal error") and "KeyError" in line
    assert "Traceback" not in result.output
    log = Path(line.split("traceback in ")[1].split(" ")[0])
    assert "Traceback" in log.read_text()
    log.unlink()


# ---------------------------------------------------------------------------------- 8. parameters
def test_nonsense_parameters_are_refused_where_declared(data_dir: Path, tmp_path: Path) -> None:
    assert_input_error(
        cli("train", data_dir, "-m", "als", "-p", "factors=0", "-o", tmp_path / "m"), "factors"
    )
    assert not (tmp_path / "m").exists()
    source = write(tmp_path / "log.csv", "user,item,timestamp\nu1,i1,1\n")
    assert_input_error(cli("import", source, "-o", tmp_path / "a", "--min-user", "-1"), "min_user")
    assert_input_error(
        cli("import", source, "-o", tmp_path / "b", "--event-type", " "), "event_type"
    )
    ok(cli("train", data_dir, "-m", "pop", "-o", tmp_path / "pop"))
    assert_input_error(cli("recommend", tmp_path / "pop", "--items", ""), "--items is empty")
    assert_input_error(cli("recommend", tmp_path / "pop", "--items", " , "), "--items is empty")


# ---------------------------------------------------------------------------------- 9. train flow
def test_train_then_recommend_excludes_everything_the_user_did(
    data_dir: Path, tmp_path: Path
) -> None:
    dataset = Dataset.load(data_dir)
    for model, params in (("als", TINY_ALS), ("sasrec", ["-p", "hidden=8", "-p", "epochs=2"])):
        out = tmp_path / model
        ok(
            cli("train", data_dir, "-m", model, "-o", out, *params, "-p", "progress=false")
            if model == "sasrec"
            else cli("train", data_dir, "-m", model, "-o", out, *params)
        )
        for index in (0, 1, 2):
            user = str(dataset.user_ids[index])
            seen = {str(dataset.item_ids[i]) for i in dataset.histories([index]).items}
            text = ok(cli("recommend", out, "--user", user, "-k", "1000"))
            rows = [line.split("│") for line in text.splitlines() if line.lstrip().startswith("│")]
            listed = {cells[3].strip() for cells in rows}
            # every item the user did not touch, none they did (the held-out events included)
            assert listed == set(dataset.item_ids) - seen, (model, user)
        # a model that learned from every event is not evaluated on held-out ones
        assert_input_error(cli("evaluate", data_dir, "-m", out), "--protocol all", "--protocol loo")


# ---------------------------------------------------------------------------------- 10. options
def test_compressed_files_and_archives(tmp_path: Path) -> None:
    csv = "user,item,timestamp\nu1,i1,1700000000\nu1,i2,1700000100\n"
    source = write(tmp_path / "log.csv.gz", gzip.compress(csv.encode()))
    ok(cli("import", source, "-o", tmp_path / "ds"))
    assert (
        Dataset.load(tmp_path / "ds").n_events == 2 and Dataset.load(tmp_path / "ds").name == "log"
    )
    with zipfile.ZipFile(tmp_path / "log.zip", "w") as archive:
        archive.writestr("log.csv", csv)
    assert_input_error(cli("import", tmp_path / "log.zip", "-o", tmp_path / "z"), "zip", "unpack")
    truncated = write(tmp_path / "cut.csv.gz", gzip.compress(csv.encode() * 50)[:40])
    assert_input_error(cli("import", truncated, "-o", tmp_path / "c"), "cut.csv.gz", "damaged gzip")


def test_encoding_and_separator_options(tmp_path: Path) -> None:
    source = write(
        tmp_path / "log.csv", "user;item;timestamp\ncafé;i1;1700000000\n".encode("latin-1")
    )
    ok(cli("import", source, "-o", tmp_path / "ds", "--encoding", "latin-1", "--sep", ";"))
    assert list(Dataset.load(tmp_path / "ds").user_ids) == ["café"]
    tabbed = write(tmp_path / "tab.csv", "user\titem\ttimestamp\nu 1\ti1\t1700000000\n")
    ok(cli("import", tabbed, "-o", tmp_path / "t", "--sep", "tab"))
    assert list(Dataset.load(tmp_path / "t").user_ids) == ["u 1"]
    result = cli("import", tmp_path / "ds", "-o", tmp_path / "x", "--encoding", "latin-1")
    assert_input_error(result, "--encoding", "'dataset'")


def test_messages_name_the_real_problem(data_dir: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "log.csv", "user,item,timestamp\nu1,i1,1\n")
    result = cli("import", source, "-o", tmp_path / "ds", "-c", "user=item")
    assert_input_error(result, "'item' is already mapped to 'user'")
    result = cli("train", data_dir, "-m", "pop", "-o", tmp_path / "m", "--protocol", "weird")
    assert_input_error(result, "all, loo, temporal")


# ---------------------------------------------------------------------------------- 11. summary
def test_import_summary_reports_each_files_own_counts(tmp_path: Path) -> None:
    rows = "".join(f"u{i % 7},i{i % 5},{1_700_000_000 + i}\n" for i in range(1200))
    events = write(tmp_path / "events.csv", "user,item,timestamp\n" + rows + "u1,i1,bad\n")
    items = write(
        tmp_path / "items.csv", "item,title\n" + "".join(f"i{i},T{i}\n" for i in range(9))
    )
    text = flat(
        ok(cli("import", events, "--items", items, "-o", tmp_path / "ds", "--min-item", "2"))
    )
    assert (
        "events.csv: 1,201 rows read, 1,200 imported, 1 skipped (1 x unparsable_timestamp)" in text
    )
    assert "items.csv: 9 rows read, 9 imported, 0 skipped" in text
    assert "1/2-core" in text and "{" not in text


# ---------------------------------------------------------------------------------- sweep
# Cases from an adversarial sweep of about 360 commands, each once through the CLI.
def parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (
            lambda d: write(d / "dup.csv", "user,item,timestamp,User\nu,i,1,v\n"),
            ("appears 2 times",),
        ),
        (
            lambda d: write(d / "u16.csv", "user,item,timestamp\nu,i,1\n".encode("utf-16")),
            ("--encoding utf-16",),
        ),
        (lambda d: write(d / "seq.txt", "user_id items\n1 2 3\n2 3 4 5\n"), ("line 1", "header")),
        (
            lambda d: parquet(
                d / "nested.parquet",
                pa.table({"user": [["a", "b"]], "item": ["i"], "timestamp": [1]}),
            ),
            ("'user'", "list", "not single values"),
        ),
        (
            lambda d: parquet(
                d / "clock.parquet",
                pa.table(
                    {"user": ["u"], "item": ["i"], "timestamp": pa.array([3600], pa.time32("s"))}
                ),
            ),
            ("'timestamp'", "time32", "not single values"),
        ),
    ],
    ids=["repeated-header", "utf-16", "sequence-header", "nested-parquet", "time-of-day"],
)
def test_unusable_files_are_named_errors(make, needles: tuple[str, ...], tmp_path: Path) -> None:
    assert_input_error(cli("import", make(tmp_path), "-o", tmp_path / "ds"), *needles)


def test_odd_cells_are_skipped_or_read_as_written(tmp_path: Path) -> None:
    table = pa.table(
        {
            "user": pa.array([b"u1", b"\xff\xfe", b"u3", b"u4"], pa.binary()),
            "item": [12.0, 12.5, -0.0, 3.0],
            "timestamp": ["2024-01-01", "2024-01-02", "now", "1e400"],
            "value": [1.0, 2.0, 3.0, 1e39],
        }
    )
    text = flat(ok(cli("import", parquet(tmp_path / "odd.parquet", table), "-o", tmp_path / "ds")))
    assert (
        "odd.parquet:2: invalid_encoding" in text and "odd.parquet:3: unparsable_timestamp" in text
    )
    assert "odd.parquet:4: unparsable_timestamp" in text  # 1e400 is no time (value checked after)
    assert list(Dataset.load(tmp_path / "ds").item_ids) == ["12"]  # not "12.0"


def test_console_script_usage_errors_are_one_line(tmp_path: Path) -> None:
    script = str(Path(sys.executable).with_name("driftrec"))
    for args in (["import", "x.csv"], ["evaluate", "x", "-k", "abc"]):
        result = subprocess.run([script, *args], capture_output=True, text=True, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
        assert "--help" in lines[0] and "╭" not in result.stderr


def test_outputs_are_checked_before_any_work(data_dir: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    write(foreign / "holiday.jpg", b"x")
    assert_input_error(cli("import", data_dir, "-o", foreign), "not empty", "manifest.json")
    assert_input_error(cli("train", data_dir, "-m", "pop", "-o", data_dir), "config.json")
    assert_input_error(cli("evaluate", data_dir, "-m", "pop", "--json", foreign), "is a directory")
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]
    ok(cli("import", data_dir, "-o", tmp_path / "again"))
    ok(cli("import", data_dir, "-o", tmp_path / "again"))  # an earlier dataset is replaced


def test_repeated_or_conflicting_options_are_refused(data_dir: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "log.csv", "a,b,c\nu,i,1\n")
    result = cli("import", source, "-o", tmp_path / "d", "-c", "user=a", "-c", "user=b")
    assert_input_error(result, "'user' is given twice")
    result = cli("tune", data_dir, "-m", "als", "-g", "factors=4", "-g", "factors=8")
    assert_input_error(result, "'factors' is given twice")
    result = cli("tune", data_dir, "-m", "als", "-g", "factors=4,8", "-p", "factors=16")
    assert_input_error(result, "both a --grid and a --param")


def test_time_based_options_need_real_timestamps(tmp_path: Path) -> None:
    source = write(
        tmp_path / "seq.txt",
        "".join(f"u{u} {' '.join(map(str, range(u, u + 5 + u % 3)))}\n" for u in range(9)),
    )
    ok(cli("import", source, "-o", tmp_path / "ds"))
    result = cli("evaluate", tmp_path / "ds", "-m", "pop", "--protocol", "temporal")
    assert_input_error(result, "no timestamps", "cut in time")
    result = cli(
        "train", tmp_path / "ds", "-m", "content", "-p", "half_life_days=7", "-o", tmp_path / "m"
    )
    assert_input_error(result, "no timestamps", "half-life in days")


def test_evaluate_with_k_beyond_the_catalog_ranks_every_item(
    data_dir: Path, tmp_path: Path
) -> None:
    records = tmp_path / "r.json"
    ok(cli("evaluate", data_dir, "-m", "pop", "-k", "10", "-k", "100000", "--json", records))
    metrics = json.loads(records.read_text())[0]["metrics"]
    assert metrics["HR@100000"] == 1.0 and metrics["HR@10"] < 1.0


def test_user_ids_typed_into_search_text_are_pseudonymised(tmp_path: Path) -> None:
    source = write(
        tmp_path / "log.csv",
        "user,item,timestamp,text\n"
        "alice@example.com,i1,1700000000,\n"
        "bob@example.com,i2,1700000001,\n"
        "bob@example.com,,1700000002,looking for alice@example.com.\n",
    )
    env = {SECRET_VAR: "k3y"}
    ok(cli("import", source, "-o", tmp_path / "ds", "--secret-env", SECRET_VAR, env=env))
    assert files_holding(tmp_path / "ds", RAW_USERS) == []
    (search,) = Dataset.load(tmp_path / "ds").events["text"].dropna()
    assert search.startswith("looking for ") and search.endswith(".") and len(search) == 12 + 32 + 1


def test_damaged_saved_datasets_and_models_are_named(data_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(data_dir, tmp_path / "copy"))
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "event_types": []}))
    assert_input_error(cli("evaluate", copy, "-m", "pop"), "events.parquet", "event codes")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    events = pd.read_parquet(copy / "events.parquet")
    events.sample(frac=1.0, random_state=0).to_parquet(copy / "events.parquet")  # shuffled
    for source, out in ((copy, "a.json"), (data_dir, "b.json")):  # re-ordered on load
        ok(cli("evaluate", source, "-m", "pop", "--json", tmp_path / out))
    a, b = (json.loads((tmp_path / f).read_text())[0] for f in ("a.json", "b.json"))
    assert a["n_test_users"] == b["n_test_users"] > 0 and a["metrics"] == b["metrics"]
    model = tmp_path / "pop"
    ok(cli("train", data_dir, "-m", "pop", "-o", model))
    ids = json.loads((model / "ids.json").read_text())
    ids["users"][1] = ids["users"][0]
    (model / "ids.json").write_text(json.dumps(ids))
    user = ids["users"][0]
    assert_input_error(cli("recommend", model, "--user", user), "ids.json", "listed twice")


def test_review_cases_of_the_import(tmp_path: Path) -> None:
    """A catalog does not hide why the events file kept nothing; a byte column nobody uses costs
    no row; an id typed into a search is replaced even when its user was dropped."""
    events = write(tmp_path / "ev.csv", "user,item,timestamp\nu1,i1,x\n")
    items = write(tmp_path / "items.csv", "item,title\ni1,One\n")
    result = cli("import", events, "--items", items, "-o", tmp_path / "a")
    assert_input_error(result, "ev.csv", "every one of the 1 rows", "unparsable_timestamp")
    table = pa.table(
        {
            "user": ["u1", "u2"],
            "item": ["i1", "i2"],
            "timestamp": [1_700_000_000, 1_700_000_001],
            "thumb": pa.array([b"\xff\xd8", b"ok"], pa.binary()),
        }
    )
    ok(cli("import", parquet(tmp_path / "t.parquet", table), "-o", tmp_path / "b"))
    assert Dataset.load(tmp_path / "b").n_events == 2
    log = write(
        tmp_path / "log.csv",
        "user,item,timestamp,text\n"
        "carol@example.com,i9,1700000000,\n"  # carol: one event, dropped by --min-user 2
        "bob@example.com,i1,1700000001,\n"
        "bob@example.com,i2,1700000002,\n"
        "bob@example.com,,1700000003,asked carol@example.com: about tenant:1\n",
    )
    env = {SECRET_VAR: "k3y"}
    args = ("import", log, "-o", tmp_path / "c", "--min-user", "2", "--secret-env", SECRET_VAR)
    ok(cli(*args, env=env))
    assert files_holding(tmp_path / "c", RAW_USERS) == []
    (search,) = Dataset.load(tmp_path / "c").events["text"].dropna()
    assert search.startswith("asked ") and search.endswith(": about tenant:1")


def test_evaluating_rows_whose_every_target_was_seen(tmp_path: Path) -> None:
    """Re-consumption data: every held-out event repeats an item already seen, so no row keeps
    a target; no NaN, no warning, the table says there was nobody to score."""
    rows = "".join(
        f"u{u},i{i},{1_700_000_000 + 10 * u + t}\n"
        for u in range(4)
        for t, i in enumerate((1, 2, 1, 2))
    )
    ok(
        cli(
            "import",
            write(tmp_path / "log.csv", "user,item,timestamp\n" + rows),
            "-o",
            tmp_path / "d",
        )
    )
    result = cli("evaluate", tmp_path / "d", "-m", "pop", "--json", tmp_path / "r.json")
    assert "no test users for pop" in flat(ok(result)) and "Warning" not in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())[0]["metrics"] == {}
    assert_input_error(cli("tune", tmp_path / "d", "-m", "als"), "nothing to tune on")
