"""The dashboard at `/` in a real headless Chromium (the system's, driven by its chromedriver:
nothing is downloaded), against a real `driftrec serve` that requires an API key; and the two
endpoints it brought, GET /overview and GET /users?q=, through the Python client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from browser import chromium, screenshot
from servers import Server, start_server

from driftrec.client import ServiceError
from driftrec.data.dataset import Dataset
from driftrec.models import create
from driftrec.serving.activity import Activity
from driftrec.serving.routers.dashboard import asset

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

KEY = "dash-key-1"


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """ALS (seconds to train) over the 40-user synthetic set, served with an API key."""
    home = tmp_path_factory.mktemp("dashboard")
    model = create("als", factors=8).fit(Dataset.load(data_dir))
    model.save(home / "model", info={"dataset": str(data_dir)})
    served = start_server(
        home / "model",
        f"sqlite:///{home / 'events.db'}",
        home / "log",
        env={"DRIFTREC_API_KEY": KEY},
    )
    yield served
    served.stop()


def test_overview_counts_posted_events_and_users_finds_a_user(server: Server) -> None:
    with server.client(api_key=KEY) as client:
        item = client.recommend("u0001", k=1)["items"][0]["item"]
        before = client.overview(minutes=60)
        assert {"click", "search"} <= set(before["event_types"]) and before["store"] == "sqlite"
        client.post_events(
            [
                {"user": "zz_new%1", "item": item, "event": "click"},
                {"user": "zz_new%1", "event": "search", "text": "anything"},
                {"user": "zz-other", "item": item, "event": "view"},
            ]
        )
        after = client.overview(minutes=60)
        events = sum(m["events"] for m in after["minutes"]) - sum(
            m["events"] for m in before["minutes"]
        )
        assert events == 3 and after["active_users"] == before["active_users"] + 2
        assert after["latency"]["requests"] > before["latency"]["requests"]
        assert after["latency"]["p50_ms"] <= after["latency"]["p99_ms"]
        assert after["model"] == "als" and after["items"] == before["items"] > 0

        found = client.users("zz_")["users"]  # "_" is literal, not LIKE's any-character
        assert found == [{"user": "zz_new%1", "stored": True, "trained": False}]
        assert [u["user"] for u in client.users("zz")["users"]] == ["zz-other", "zz_new%1"]
        assert client.users("%")["users"] == []
        trained = client.users("u000", limit=3)["users"]
        assert [u["user"] for u in trained] == ["u0001", "u0002", "u0003"]
        assert all(u["trained"] for u in trained)
        with pytest.raises(ServiceError) as err:
            client.users("u", limit=0)
        assert err.value.status == 422 and err.value.detail[0]["loc"] == ["query", "limit"]
    assert httpx.get(f"{server.url}/users", params={"q": "u"}).status_code == 401
    assert httpx.get(f"{server.url}/overview").status_code == 200  # open, like /health
    page = httpx.get(server.url + "/")  # the page and its assets need no key
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    plotly = httpx.get(f"{server.url}/static/plotly.min.js")
    assert plotly.status_code == 200 and plotly.content == asset("plotly.min.js").body
    missing = httpx.get(f"{server.url}/static/secrets.txt")
    assert missing.status_code == 404 and missing.json()["detail"][0]["loc"] == ["path", "name"]


def test_dashboard_follows_a_user_through_posted_events(server: Server, tmp_path: Path) -> None:
    """Load the page, meet the key prompt, enter the key, pick a user from the suggestions,
    click a recommended item and post a search: the page shows each change without a reload
    (the event count, the item leaving the top 10, a timeline point more, the searches)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium(tmp_path / "profile") as driver:
        # the page re-renders what it shows: an element found may be replaced before it is read
        wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.ID, "t-items").text.strip().isdigit())
        assert "als" in driver.find_element(By.ID, "model-badge").text

        search = driver.find_element(By.ID, "user-search")
        search.send_keys("u00")  # without a key: the listing is refused, the page says why
        banner = wait.until(ready.visibility_of_element_located((By.ID, "banner")))
        assert "API key" in banner.text

        driver.find_element(By.ID, "api-key").send_keys(KEY)
        driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
        wait.until(ready.invisibility_of_element_located((By.ID, "banner")))
        search.clear()
        search.send_keys("u001")
        option = wait.until(
            ready.element_to_be_clickable((By.CSS_SELECTOR, "#user-suggestions li[data-user]"))
        )
        user = option.get_attribute("data-user")
        assert user.startswith("u001")
        option.click()

        rows = "#recs tbody tr[data-item]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 10)
        for chart in ("chart-timeline", "chart-drift", "chart-profile", "chart-minutes"):
            wait.until(lambda d, c=chart: d.find_elements(By.CSS_SELECTOR, f"#{c} .main-svg"))
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-timeline.js-plotly-plot")
        events = int(wait.until(lambda d: d.find_element(By.ID, "event-count").text))
        points = _timeline_points(driver)

        driver.find_element(By.ID, "search-text").send_keys("slow cooking for winter")
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait.until(lambda d: "slow cooking for winter" in d.find_element(By.ID, "searches").text)
        wait.until(lambda d: "Posted search" in d.find_element(By.ID, "changes").text)
        count = wait.until(lambda d: d.find_element(By.ID, "event-count").text)
        assert count == str(events)  # a search is not an item event

        first = driver.find_element(By.CSS_SELECTOR, rows)
        item = first.get_attribute("data-item")
        first.find_element(By.CSS_SELECTOR, "button.why-button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".why-row .why-event"))

        first.find_element(By.CSS_SELECTOR, "button.act").click()  # posts a click on it
        wait.until(lambda d: d.find_element(By.ID, "event-count").text == str(events + 1))
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-item="{item}"]'))
        changes = wait.until(ready.visibility_of_element_located((By.ID, "changes")))
        assert f"item events {events} → {events + 1}" in changes.text
        assert "top topic" in changes.text
        assert len(driver.find_elements(By.CSS_SELECTOR, "#recs tr.is-new")) >= 1
        wait.until(lambda d: _timeline_points(d) == points + 1)
        driver.find_element(By.CSS_SELECTOR, f"{rows} button.why-button").click()  # for the picture
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".why-row .why-event"))
        # the online metrics panel shows what was reported (impressions and a click)
        with server.client(api_key=KEY) as client:
            answer = client.recommend(user, k=5)
            shown = [i["item"] for i in answer["items"]]
            client.post_impressions(answer["request_id"], user, shown)
            client.post_events(
                {
                    "user": user,
                    "item": shown[0],
                    "event": "click",
                    "request_id": answer["request_id"],
                }
            )
        driver.find_element(By.CSS_SELECTOR, "#key-form button").click()  # refreshes the panel
        row = '#online-body tr[data-variant="main"]'
        wait.until(lambda d: "20%" in d.find_element(By.CSS_SELECTOR, row).text)  # 1 of 5
        time.sleep(0.5)  # let the charts' transitions settle
        screenshot(driver, "dashboard")
        errors = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "401" not in e["message"]  # the key prompt's call
        ]
        assert not errors, errors
    with server.client(api_key=KEY) as client:
        answer = client.interests(user)
    # the page's click and the reported one
    assert answer["events"] == events + 2 and answer["searches"] == ["slow cooking for winter"]


def _timeline_points(driver: WebDriver) -> int:
    """How many points the timeline chart draws (plotly keeps its data on the element)."""
    return int(
        driver.execute_script(
            "const c = document.getElementById('chart-timeline');"
            "return c.data && c.data.length ? c.data[0].x.length : 0;"
        )
    )


def test_activity_rolls_minutes_and_forgets_users_after_five() -> None:
    """The per-minute counters behind /overview, on a clock the test moves."""
    now = [6_000.0]  # minute 100
    activity = Activity(clock=lambda: now[0])
    activity.events(2, ["a", "b"])
    for ms in (1, 1, 1, 2, 100):
        activity.request("/events", ms / 1000)
    activity.request("/overview", 5.0)  # the dashboard's polling is not counted
    summary = activity.summary(3)
    assert [m["events"] for m in summary["minutes"]] == [0, 0, 2]
    assert summary["minutes"][-1] == {"minute": 6_000, "events": 2, "requests": 5}
    assert summary["active_users"] == 2 and summary["latency"]["requests"] == 5
    assert summary["latency"]["p50_ms"] == pytest.approx(1, rel=0.08)
    assert summary["latency"]["p99_ms"] == pytest.approx(100, rel=0.08)
    now[0] += 4 * 60  # minute 104: the users of minute 100 still count
    activity.events(1, ["c"])
    assert activity.summary(5)["active_users"] == 3
    now[0] += 60  # minute 105: they do not any more; latency forgets minute 100 too
    summary = activity.summary(6)
    assert summary["active_users"] == 1 and summary["latency"]["requests"] == 0
    assert [m["events"] for m in summary["minutes"]] == [2, 0, 0, 0, 1, 0]
    now[0] += 3_600  # an hour later the ring holds nothing of that hour
    assert sum(m["events"] for m in activity.summary(60)["minutes"]) == 0
