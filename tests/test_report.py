"""`driftrec report`: one HTML file that opens with the network off in a real headless Chromium
with every chart drawn, PNG charts beside it, and its inputs checked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from browser import chromium, screenshot
from clitools import assert_input_error, cli, ok
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from driftrec.data.synthetic import SyntheticData
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.replay import replay_split
from driftrec.evaluation.tracking import Truth
from driftrec.models import create, load
from driftrec.reports import user_story


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ALS trained on the synthetic set, and a replay of popularity on its newest 30%."""
    home = tmp_path_factory.mktemp("report")
    ok(cli("train", data_dir, "-m", "als", "-p", "factors=8", "-o", home / "als"))
    ok(cli("replay", data_dir, "-m", "pop", "--fraction", "0.3", "--json", home / "replay.json"))
    return {"model": home / "als", "replay": home / "replay.json", "home": home}


def _drifting_user(data_dir: Path) -> str:
    drifts = pd.read_parquet(data_dir / "truth_drifts.parquet")
    return str(drifts["user"].iloc[0])


def test_the_report_opens_offline_with_every_chart_drawn(
    data_dir: Path, trained: dict[str, Path], tmp_path: Path
) -> None:
    user = _drifting_user(data_dir)
    out, png = tmp_path / "report.html", tmp_path / "png"
    ok(cli("report", data_dir, "-m", trained["model"], "-u", user, "--results",
           trained["replay"], "-o", out, "--png", png))  # fmt: skip
    charts = ["interests", "drift", "profiles"]
    for name in charts:  # the PNG versions
        assert (png / f"{user}_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (png / "results_replay_json.png").exists()
    with chromium(tmp_path / "profile", offline=True) as driver:
        with pytest.raises(WebDriverException, match="INTERNET_DISCONNECTED"):
            driver.get("https://example.com/")  # the switch is on: no page from the network
        driver.get(out.as_uri())
        plots = WebDriverWait(driver, 30).until(
            lambda d: (p := d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) and len(p) == 4
            and all(x.find_elements(By.CSS_SELECTOR, "svg.main-svg") for x in p) and p
        )  # fmt: skip
        assert driver.execute_script("return typeof Plotly") == "object"  # inlined
        linked = "return document.querySelectorAll('script[src], link[href], img[src]').length"
        assert driver.execute_script(linked) == 0
        fetched = "return performance.getEntriesByType('resource').map(e => e.name)"
        assert driver.execute_script(fetched) == []  # nothing asked of any network
        traces = driver.execute_script(
            "return [...document.querySelectorAll('.js-plotly-plot')].map(p => p.data.length)"
        )
        assert all(n > 0 for n in traces) and len(plots) == 4
        tables = driver.find_elements(By.TAG_NAME, "table")
        assert len(tables) == 2  # the recommendations and the replay
        assert len(tables[0].find_elements(By.CSS_SELECTOR, "tbody tr")) == 10
        screenshot(driver, "report")


@pytest.mark.parametrize("trained_on", ["every event", "the older half"])
def test_the_story_is_what_the_service_would_say_beside_the_truth(
    data_dir: Path, trained: dict[str, Path], trained_on: str
) -> None:
    """A model that holds all of the user's events, or only their older ones (the report
    adds the newer ones through the tracker): every item event counts once either way."""
    data = SyntheticData.load(data_dir)
    truth = Truth.from_synthetic(data)
    if trained_on == "every event":
        model = load(trained["model"])
    else:
        model = train_model(create("als", factors=8), replay_split(data.dataset, 0.5)[0])
    ev = data.dataset.events
    item_events = ev[ev["item"] >= 0].groupby("user").size()
    drifting = data.dataset.user_index(data.drifts["user"].unique())
    ids = data.dataset.user_ids

    def straddles(u: int) -> bool:  # the model holds some of the user's events, not all
        return 0 < len(model.history_events(str(ids[u]))) < item_events[u]

    user = next(str(ids[u]) for u in drifting if trained_on == "every event" or straddles(u))
    index = data.dataset.user_index([user])[0]
    story = user_story(model, data.dataset, user, truth)
    assert story.timeline["events"] == item_events[index] == len(story.truth)
    assert set(story.topics) >= {t["topic"] for t in story.interests["long_term"]}
    assert len(story.recommendations) == 10 and set(story.why) == {
        r["item"] for r in story.recommendations
    }
    assert list(story.truth.columns) == ["timestamp", *truth.categories]
    assert len(story.shifts) == int((truth.shifts["user"] == index).sum()) >= 1
    assert story.interests["drift"]["shifts"] == story.timeline["shifts"]


def test_bad_report_requests_are_one_line_errors(
    data_dir: Path, trained: dict[str, Path], tmp_path: Path
) -> None:
    assert_input_error(cli("report", data_dir, "-u", "u0001"), "--user needs --model")
    assert_input_error(cli("report", data_dir), "nothing to report")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_input_error(cli("report", data_dir, "--results", bad), "bad.json", "not valid JSON")
    bad.write_text(json.dumps([1, 2]))
    assert_input_error(cli("report", data_dir, "--results", bad), "list of objects")
    assert_input_error(
        cli("report", data_dir, "-m", trained["model"], "-u", "nobody"), "unknown user id 'nobody'"
    )
