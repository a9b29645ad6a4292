"""End-to-end tests of the `driftrec` command: import, train, evaluate, recommend, models, demo.

Most tests drive `driftrec.cli.main.app` in-process with typer's CliRunner; two run the installed
console script to check the exit code and that no traceback reaches the user. Data is tiny
(a hand-written CSV, a 40-user synthetic dataset) so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import assert_input_error, cli, flat, ok

from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.models import MODELS
from driftrec.models import load as load_model

SECRET_VAR = "DRIFTREC_TEST_CLI_SECRET"
TINY_ALS = ["-p", "factors=8", "-p", "iterations=3"]
TINY_SASREC = ["-p", "hidden=8", "-p", "heads=1", "-p", "layers=1", "-p", "epochs=2"]
TINY_SASREC += ["-p", "progress=false"]

# line 1 is the header; every other line but 2, 3, 9 and 10 is broken in its own way
BROKEN_CSV = (
    b"user,item,timestamp,rating\n"
    b"u1,i1,2024-01-01T00:00:00,5\n"
    b"u1,i2,2024-01-02,4\n"
    b",i3,2024-01-03,3\n"  # 4: no user
    b"u2,i1,notatime,3\n"  # 5: bad timestamp
    b"u2,i2,2024-01-05,abc\n"  # 6: non-numeric rating
    b"caf\xe9,i3,2024-01-06,4\n"  # 7: a latin-1 byte in a UTF-8 file
    b"u3,i1,2024-01-07,2,extra\n"  # 8: one field too many
    b"u3,i2,2024-01-08,1\n"
    b"u2,i3,2024-01-09,5\n"
)
BAD_LINES = {
    4: "missing_user",
    5: "unparsable_timestamp",
    6: "non_numeric_value",
    7: "invalid_encoding",
    8: "wrong_field_count",
}

VISITOR_CSV = (
    "visitor,item,timestamp\n"
    "v1,i1,1700000000\n"
    "v1,i2,1700000100\n"
    "v2,i1,1700000200\n"
    "v2,i2,1700000300\n"
    "v3,i1,1700000400\n"
)


# ---------------------------------------------------------------------------------- helpers
def table_rows(output: str) -> list[list[str]]:
    """Body rows of the rich tables in ``output``, as stripped cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.lstrip().startswith("│")
    ]


def console_script() -> str:
    script = Path(sys.executable).with_name("driftrec")
    if not script.exists():
        pytest.skip("the driftrec console script is not installed (pip install -e .)")
    return str(script)


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dataset(data_dir: Path) -> Dataset:
    return Dataset.load(data_dir)


@pytest.fixture(scope="module")
def als_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "als"
    ok(
        cli("train", data_dir, "-m", "als", "-o", out, "--protocol", "loo", *TINY_ALS)
    )  # evaluated too
    return out


@pytest.fixture(scope="module")
def sasrec_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("models") / "sasrec"
    return out, ok(cli("train", data_dir, "-m", "sasrec", "-o", out, *TINY_SASREC))


@pytest.fixture
def broken_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_bytes(BROKEN_CSV)
    return path


@pytest.fixture
def visitor_csv(tmp_path: Path) -> Path:
    path = tmp_path / "visits.csv"
    path.write_text(VISITOR_CSV)
    return path


# ---------------------------------------------------------------------------------- import
def test_import_reports_every_bad_row_and_keeps_the_rest(broken_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    text = flat(ok(cli("import", broken_csv, "--out", out)))
    assert "events.csv: 9 rows read, 4 imported, 5 skipped" in text
    for line, reason in BAD_LINES.items():
        assert f"events.csv:{line}: {reason}" in text
        assert f"1 x {reason}" in text
    assert "(expected 4 fields, found 5)" in text
    assert f"wrote {out}" in text
    assert (out / "manifest.json").is_file()
    dataset = Dataset.load(out)
    assert sorted(dataset.user_ids) == ["u1", "u2", "u3"]
    assert dataset.n_events == 4
    report = dataset.info["import_report"]
    assert report["rows_skipped"] == 5
    assert {e["line"]: e["reason"] for e in report["examples"]} == BAD_LINES


def test_import_without_a_user_column_is_a_one_line_error(
    visitor_csv: Path, tmp_path: Path
) -> None:
    result = cli("import", visitor_csv, "--out", tmp_path / "ds")
    assert_input_error(result, "visits.csv", "'user'", "visitor")
    assert not (tmp_path / "ds").exists()


def test_import_missing_file_exits_2(tmp_path: Path) -> None:
    result = cli("import", tmp_path / "nowhere.csv", "--out", tmp_path / "ds")
    assert_input_error(result, "nowhere.csv")


def test_import_column_mapping(visitor_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    text = flat(ok(cli("import", visitor_csv, "-o", out, "--column", "user=visitor")))
    assert "columns used: user=visitor, item=item, timestamp=timestamp" in text
    assert sorted(Dataset.load(out).user_ids) == ["v1", "v2", "v3"]


def test_import_column_mapping_to_a_missing_column_exits_2(
    visitor_csv: Path, tmp_path: Path
) -> None:
    result = cli("import", visitor_csv, "-o", tmp_path / "ds", "-c", "user=nobody")
    assert_input_error(result, "visits.csv", "'nobody'")


def test_import_min_user_shows_k_core_counts(visitor_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    text = flat(ok(cli("import", visitor_csv, "-o", out, "-c", "user=visitor", "--min-user", "2")))
    assert "5 events in, 4 out" in text
    assert "2/1-core (min events per user/item) removed 1 events, 1 users, 0 items" in text
    dataset = Dataset.load(out)
    assert sorted(dataset.user_ids) == ["v1", "v2"]
    assert dataset.info["preprocessing"]["k_core"]["users_removed"] == 1


def test_import_secret_env_pseudonymises_user_ids(visitor_csv: Path, tmp_path: Path) -> None:
    def import_with(secret: str, out: str) -> list[str]:
        args = ("import", visitor_csv, "-o", tmp_path / out, "-c", "user=visitor")
        ok(cli(*args, "--secret-env", SECRET_VAR, env={SECRET_VAR: secret}))
        dataset = Dataset.load(tmp_path / out)
        assert dataset.info["preprocessing"]["pseudonymised"] is True
        return sorted(dataset.user_ids)

    first, again, other = (
        import_with("s3cret", "a"),
        import_with("s3cret", "b"),
        import_with("x", "c"),
    )
    assert len(first) == 3
    assert not set(first) & {"v1", "v2", "v3"}
    assert first == again
    assert not set(first) & set(other)


def test_import_secret_env_unset_exits_2(visitor_csv: Path, tmp_path: Path) -> None:
    result = cli(
        "import",
        visitor_csv,
        "-o",
        tmp_path / "ds",
        "-c",
        "user=visitor",
        "--secret-env",
        SECRET_VAR,
        env={SECRET_VAR: None},
    )
    assert_input_error(result, SECRET_VAR)
    assert not (tmp_path / "ds").exists()


def test_import_column_option_on_a_saved_dataset_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = cli("import", data_dir, "-o", tmp_path / "ds", "--column", "user=visitor")
    assert_input_error(result, str(data_dir), "'dataset'")


def test_import_column_error_names_the_real_flag(data_dir: Path, tmp_path: Path) -> None:
    result = cli("import", data_dir, "-o", tmp_path / "ds", "--column", "user=visitor")
    assert "--column does not apply" in assert_input_error(result)


def test_import_of_a_saved_dataset_directory(data_dir: Path, tmp_path: Path) -> None:
    result = cli("import", data_dir, "-o", tmp_path / "copy")
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert not isinstance(result.exception, TypeError)


def test_console_script_missing_user_column_exits_2_without_traceback(
    visitor_csv: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [console_script(), "import", str(visitor_csv), "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "visits.csv" in lines[0] and "'user'" in lines[0]


# ---------------------------------------------------------------------------------- train
def test_train_als_writes_a_model_directory(als_dir: Path, data_dir: Path) -> None:
    for name in ("config.json", "state.safetensors", "ids.json"):
        assert (als_dir / name).is_file(), name
    config = json.loads((als_dir / "config.json").read_text())
    assert config["model"] == "als"
    assert config["params"]["factors"] == 8 and config["params"]["iterations"] == 3
    assert config["info"] == {
        "dataset": str(data_dir.resolve()),
        "protocol": "loo",
        "pseudonymised": False,
    }


def test_train_tiny_sasrec(sasrec_run: tuple[Path, str]) -> None:
    out, stdout = sasrec_run
    for name in ("config.json", "state.safetensors", "ids.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "sasrec"
    params = config["params"]
    assert (params["hidden"], params["heads"], params["layers"], params["epochs"]) == (8, 1, 1, 2)
    assert params["progress"] is False
    assert config["info"]["training"]["epochs_run"] <= 2
    assert "validation NDCG@10" in stdout


def test_train_config_file_is_honoured_and_params_override_it(
    data_dir: Path, tmp_path: Path
) -> None:
    config_file = tmp_path / "params.json"
    config_file.write_text(json.dumps({"factors": 6, "iterations": 2, "regularization": 0.5}))
    out = tmp_path / "model"
    ok(
        cli(
            "train", data_dir, "-m", "als", "-o", out, "--config", config_file, "-p", "iterations=1"
        )
    )
    params = json.loads((out / "config.json").read_text())["params"]
    assert (params["factors"], params["iterations"], params["regularization"]) == (6, 1, 0.5)


@pytest.mark.parametrize(
    ("text", "needle"),
    [('{"factors": 8,', "not valid JSON"), (None, "not found")],
    ids=["malformed", "missing"],
)
def test_train_bad_config_file_exits_2(
    data_dir: Path, tmp_path: Path, text: str | None, needle: str
) -> None:
    config_file = tmp_path / "params.json"
    if text is not None:
        config_file.write_text(text)
    result = cli("train", data_dir, "-m", "als", "-o", tmp_path / "m", "--config", config_file)
    assert_input_error(result, "params.json", needle)
    assert not (tmp_path / "m").exists()


def test_train_config_file_that_is_not_an_object_exits_2(data_dir: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "params.json"
    config_file.write_text("[8, 3]")
    result = cli("train", data_dir, "-m", "als", "-o", tmp_path / "m", "--config", config_file)
    assert_input_error(result, "params.json")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_unknown_model_name_exits_2(command: str, data_dir: Path, tmp_path: Path) -> None:
    extra = ["-o", str(tmp_path / "m")] if command == "train" else []
    result = cli(command, data_dir, "-m", "no-such-model", *extra)
    message = assert_input_error(result, "'no-such-model'")
    assert all(name in message for name in MODELS)


def test_param_not_key_value_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = cli("train", data_dir, "-m", "als", "-o", tmp_path / "m", "-p", "factors")
    assert_input_error(result, "--param", "'factors'", "key=value")


def test_unknown_param_name_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = cli("train", data_dir, "-m", "als", "-o", tmp_path / "m", "-p", "bogus=1")
    assert_input_error(result, "bogus")


def test_param_of_the_wrong_type_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = cli("train", data_dir, "-m", "als", "-o", tmp_path / "m", "-p", "factors=abc")
    assert_input_error(result, "factors")


def test_console_script_unknown_model_exits_2_without_traceback(
    data_dir: Path, tmp_path: Path
) -> None:
    args = ["train", str(data_dir), "-m", "no-such-model", "-o", str(tmp_path / "m")]
    result = subprocess.run([console_script(), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().startswith("error: unknown model 'no-such-model'")
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_baselines_prints_a_table_and_writes_json(data_dir: Path, tmp_path: Path) -> None:
    json_out = tmp_path / "results" / "out.json"
    args = ("evaluate", data_dir, "-m", "pop", "-m", "itemknn", "--json", json_out)
    stdout = ok(cli(*args, "-k", "5", "-k", "10"))
    rows = {row[0]: row for row in table_rows(stdout)}
    assert set(rows) == {"pop", "itemknn"}
    for name in ("HR@5", "NDCG@5", "HR@10", "NDCG@10", "MRR@10"):
        assert name in stdout
    records = json.loads(json_out.read_text())
    assert [r["model"] for r in records] == ["pop", "itemknn"]
    for record in records:
        metrics = record["metrics"]
        for name in ("NDCG@5", "NDCG@10", "HR@5", "HR@10", "Recall@10", "Coverage@10"):
            assert 0.0 <= metrics[name] <= 1.0, (name, metrics)
        assert metrics["HR@5"] <= metrics["HR@10"]
        # the table shows the same numbers as the JSON
        assert f"{metrics['NDCG@10']:.4f}" in rows[record["model"]]


def test_evaluate_saved_model_directory(als_dir: Path, data_dir: Path) -> None:
    stdout = ok(cli("evaluate", data_dir, "-m", als_dir))
    assert str(als_dir) in stdout
    assert "NDCG@10" in stdout
    assert len(table_rows(stdout)) == 1


def test_evaluate_model_directory_on_other_data_exits_2(als_dir: Path, tmp_path: Path) -> None:
    config = SyntheticConfig(n_users=20, n_items=50, events_per_user=(22, 30), min_segment=5)
    other = generate(config).dataset.save(tmp_path / "other")
    result = cli("evaluate", other, "-m", als_dir)
    assert_input_error(result, str(als_dir), "60 items", "50")


# ---------------------------------------------------------------------------------- recommend
def test_recommend_for_a_known_user(als_dir: Path, dataset: Dataset) -> None:
    user = str(dataset.user_ids[0])
    rows = table_rows(ok(cli("recommend", als_dir, "--user", user, "-k", "3")))
    assert [row[1] for row in rows] == ["1", "2", "3"]
    assert all(row[0] == user for row in rows)
    items = [row[2] for row in rows]
    assert len(set(items)) == 3
    titles = dataset.items["title"].to_numpy()[dataset.item_index(items)]
    assert [row[4] for row in rows] == list(titles)
    scores = [float(row[3]) for row in rows]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("model", ["als", "sasrec"])
def test_recommend_for_a_new_item_sequence(
    model: str, request: pytest.FixtureRequest, dataset: Dataset
) -> None:
    model_dir = (
        request.getfixturevalue("als_dir")
        if model == "als"
        else (request.getfixturevalue("sasrec_run")[0])
    )
    history = [str(i) for i in dataset.item_ids[:2]]
    rows = table_rows(ok(cli("recommend", model_dir, "--items", ",".join(history), "-k", "4")))
    assert [row[1] for row in rows] == ["1", "2", "3", "4"]
    assert all(row[0] == "query 0" for row in rows)
    assert not {row[2] for row in rows} & set(history)  # seen items are excluded by default


def test_recommend_unknown_user_exits_2(als_dir: Path) -> None:
    assert_input_error(cli("recommend", als_dir, "--user", "nobody-here"), "'nobody-here'")


def test_recommend_unknown_item_in_sequence_exits_2(als_dir: Path, dataset: Dataset) -> None:
    result = cli("recommend", als_dir, "--items", f"{dataset.item_ids[0]},no-such-item")
    assert_input_error(result, "'no-such-item'")


def test_recommend_needs_exactly_one_of_user_or_items(als_dir: Path) -> None:
    assert_input_error(cli("recommend", als_dir), "--user", "--items")


def test_recommend_from_a_directory_that_is_no_model_exits_2(tmp_path: Path) -> None:
    assert_input_error(cli("recommend", tmp_path, "--user", "u1"), "config.json")


# ---------------------------------------------------------------------------------- models, demo
def test_models_lists_every_registry_name() -> None:
    stdout = ok(cli("models"))
    # one entry per name, in registry order: the name, then the default model's repr (long
    # reprs wrap onto further lines)
    starts = [re.search(rf"^{re.escape(name)} +\w+\(", stdout, re.MULTILINE) for name in MODELS]
    assert all(starts), stdout
    positions = [match.start() for match in starts if match]
    assert positions == sorted(positions)
    assert "SASRec(hidden=64" in stdout and "ALS(factors=64" in stdout


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    stdout = ok(cli("demo", "--out", out, "--users", "60"))
    records = json.loads((out / "results.json").read_text())
    names = [r["model"] for r in records]
    assert names == ["pop", "recent-pop", "itemknn", "bpr", "als", "content", "fused"]
    assert "weight of the short-term side" in flat(stdout)
    assert "free-text interest" in flat(stdout)
    # Each shown sentence names a category; the content model finds items of it.
    queries = json.loads((out / "text_queries.json").read_text())
    assert len(queries) == 3 and all(q["category"] in q["text"] for q in queries)
    assert all(q["precision@5"] >= 0.8 for q in queries)
    assert all("NDCG@10" in r["metrics"] and "NDCG@20" in r["metrics"] for r in records)
    for name in names:
        assert (out / "models" / name / "config.json").is_file()
        assert (out / "models" / name / "state.safetensors").is_file()
    assert (out / "data" / "manifest.json").is_file()
    assert len(Dataset.load(out / "data").user_ids) == 60
    assert re.search(r"results\.json written under", flat(stdout))
    assert "interest report of user" in flat(stdout)
    page = (out / "report.html").read_text()
    assert "Interest over time" in page and "true mixture" in page and "Plotly" in page


def test_recommend_with_the_fused_model_reports_its_drift_gate(
    data_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "fused"
    ok(cli("train", data_dir, "-m", "fused", "-o", out, *TINY_SASREC, "-p", "long_len=20"))
    users = [str(u) for u in dataset.user_ids[:2]]
    stdout = ok(cli("recommend", out, "--user", users[0], "--user", users[1], "-k", "2"))
    weights = re.findall(r"(\S+): short-term weight (\d\.\d\d)", flat(stdout))
    assert [w[0] for w in weights] == users
    assert all(0.0 <= float(w[1]) <= 1.0 for w in weights)
    stdout = ok(cli("recommend", out, "--items", str(dataset.item_ids[0]), "-k", "2"))
    assert "the given items: short-term weight" in flat(stdout)


# ------------------------------------------------------------------------------ recommend --text
COOKING_SENTENCE = "I want a cookbook with easy recipes for family dinners"


@pytest.fixture(scope="module")
def content_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "content"
    ok(cli("train", data_dir, "-m", "content", "-o", out, "-p", "progress=false"))
    return out


def test_recommend_text_ranks_items_of_the_theme(content_dir: Path) -> None:
    rows = table_rows(ok(cli("recommend", content_dir, "--text", COOKING_SENTENCE, "-k", "4")))
    assert [row[1] for row in rows] == ["1", "2", "3", "4"]
    assert all(row[0] == "query 0" for row in rows)
    assert all("cooking" in row[5] for row in rows), rows  # the categories column
    scores = [float(row[3]) for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_recommend_text_mixes_with_a_user_or_items(content_dir: Path, dataset: Dataset) -> None:
    user = str(dataset.user_ids[0])
    by_user = table_rows(ok(cli("recommend", content_dir, "--user", user, "-k", "5")))
    args = ("recommend", content_dir, "--user", user, "--text", COOKING_SENTENCE, "-k", "5")
    history_only = table_rows(ok(cli(*args, "--text-weight", "0")))
    assert [row[2] for row in history_only] == [row[2] for row in by_user]
    text_only = table_rows(ok(cli(*args, "--text-weight", "1")))
    assert all(row[0] == user for row in text_only)
    # all text: the sentence's own ranking, less what the user has already seen
    seen = set(load_model(content_dir).histories_for([user]).items.tolist())
    ranking = table_rows(ok(cli("recommend", content_dir, "--text", COOKING_SENTENCE, "-k", "60")))
    unseen = [row[2] for row in ranking if dataset.item_index([row[2]])[0] not in seen]
    assert [row[2] for row in text_only] == unseen[:5]
    mixed = table_rows(ok(cli(*args)))  # --text-weight 0.5
    assert len(mixed) == 5 and all(row[0] == user for row in mixed)
    seen = [str(i) for i in dataset.item_ids[:2]]
    rows = table_rows(
        ok(cli("recommend", content_dir, "--items", ",".join(seen), "--text", COOKING_SENTENCE))
    )
    assert len(rows) == 10 and not {row[2] for row in rows} & set(seen)


def test_recommend_text_with_a_model_that_reads_no_text_exits_2(als_dir: Path) -> None:
    assert_input_error(
        cli("recommend", als_dir, "--text", "jazz records"), "does not read text", "'content'"
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--user", "u0001", "--items", "i0001", "--text", "jazz"], ("--user", "--items")),
        (["--user", "u0001", "--text-weight", "0.3"], ("--text-weight", "--text")),
        (["--text", "jazz", "--text-weight", "1.5"], ("--text-weight", "1.5")),
        (["--text", "  "], ("--text",)),
    ],
)
def test_recommend_text_option_misuse_exits_2(
    content_dir: Path, args: list[str], needles: tuple[str, ...]
) -> None:
    assert_input_error(cli("recommend", content_dir, *args), *needles)


def test_recommend_text_with_a_fused_text_model_reports_the_gate_only_for_a_history(
    data_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "fused-text"
    params = ["-p", "long_len=20", "-p", "features=text"]
    ok(cli("train", data_dir, "-m", "fused", "-o", out, *TINY_SASREC, *params))
    stdout = ok(cli("recommend", out, "--text", COOKING_SENTENCE, "-k", "3"))
    assert len(table_rows(stdout)) == 3
    assert "short-term weight" not in stdout
    user = str(dataset.user_ids[0])
    stdout = ok(cli("recommend", out, "--user", user, "--text", COOKING_SENTENCE, "-k", "3"))
    assert f"{user}: short-term weight" in flat(stdout)
