"""Simulated users in a closed loop (docs/feedback.md, "Simulated users"): people whose true,
drifting interests are known ask for recommendations, click some of what they are shown, and
their clicks go back to the recommender, which answers their next request with them.

The users come from the synthetic generator. A user's simulated future is their generated
events from a split time on (the events before it train the model): session s of the user
follows the true mixture of their s-th future event, so their interest shifts at known
sessions, and begins with that event itself, posted as the user's own doing (a search, a
browse: what people do besides clicking recommendations). Without it a user whose interest
moved would never show it: they would only be shown, and ignore, the old interest. Then they
are shown the top k and examine slot r (0-based) with probability
1 / log2(r + 2) (the examination hypothesis behind DCG), and click an examined item with
probability ``p_max`` times their true interest in its category; at most one click a session,
the highest clicked slot. An item the user already had (before the split, or clicked in the
simulation) is worth nothing to them: nobody clicks the same film twice because it is shown
again, so a recommender that keeps showing it gains nothing. Each session also records its
*expected* CTR (the chance of a click, from the same model), which measures an answer without
the noise of one draw, and the expected CTR of the best possible list (every slot from the
user's strongest category): interests differ in how clickable they are (one strong taste gets
more clicks than five weak ones), so recovery after a shift is measured on the ratio of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.evaluation.replay import replay_split, time_order
from driftrec.evaluation.tracking import Truth
from driftrec.store import Impression, StoredEvent
from driftrec.tracking import Tracker

BEFORE_SHIFT = 10  # sessions before a shift whose expected CTR is the level to get back to
RECOVERED = 0.9  # recovered: expected CTR back to this share of that level
CLICK = "click"  # the event type a simulated click is posted as


@dataclass(frozen=True)
class ClickModel:
    """Position bias times interest: P(click slot r) = p_max · interest / log2(r + 2)."""

    p_max: float = 0.5

    def probabilities(self, interest: np.ndarray) -> np.ndarray:
        """(slots,) click probability of each shown slot, given the user's true interest in
        each shown item's category."""
        slots = np.arange(len(interest))
        return self.p_max * np.asarray(interest, np.float64) / np.log2(slots + 2)

    def expected_ctr(self, interest: np.ndarray) -> float:
        """The chance the session has a click."""
        return float(1 - np.prod(1 - self.probabilities(interest)))

    def best_ctr(self, mixture: np.ndarray, slots: int) -> float:
        """The expected CTR of the best list of ``slots`` items for a user with ``mixture``:
        each from their strongest category."""
        return self.expected_ctr(np.full(slots, float(np.max(mixture))))

    def click(self, interest: np.ndarray, rng: np.random.Generator) -> int | None:
        """The slot clicked in one session (the highest one that drew a click), or None."""
        drawn = np.flatnonzero(rng.random(len(interest)) < self.probabilities(interest))
        return int(drawn[0]) if len(drawn) else None


@dataclass(frozen=True)
class Population:
    """Users with a simulated future: ``rows[u]`` are the dataset rows of user u's future item
    events, whose true mixtures set their interest at each session."""

    truth: Truth
    users: list[str]
    rows: list[np.ndarray]
    start_time: int
    had: list[set[int]]  # each user's items (dataset indices) from before the split

    @classmethod
    def split(cls, truth: Truth, fraction: float = 0.5) -> tuple[Dataset, Population]:
        """The events before the newest ``fraction`` (to train on) and the users who have
        item events after it, each with those events as their future."""
        train, start = replay_split(truth.dataset, fraction)
        stream = time_order(truth.dataset)
        future = stream.iloc[start:]
        future = future[future["item"].to_numpy() >= 0]
        past = stream.iloc[:start]
        past = past[past["item"].to_numpy() >= 0].groupby("user")["item"]
        before = {int(u): set(items.tolist()) for u, items in past}
        users, rows, had = [], [], []
        for user, part in future.groupby("user", sort=True):
            users.append(str(truth.dataset.user_ids[user]))
            rows.append(np.sort(part.index.to_numpy(np.int64)))
            had.append(before.get(int(user), set()))
        if not users:
            raise InputError("no user has events to simulate after the split")
        start_time = int(stream["timestamp"].to_numpy()[start])
        return train, cls(truth, users, rows, start_time, had)

    def interest(self, user: int, session: int) -> np.ndarray:
        """(n_categories,) the true mixture of ``user`` (an index into ``users``) at
        ``session`` (the last one holds after their future runs out)."""
        rows = self.rows[user]
        return self.truth.mixtures[rows[min(session, len(rows) - 1)]]

    def shifts(self) -> pd.DataFrame:
        """The true shifts inside the simulated futures: user (index into ``users``), kind and
        the session at which each begins."""
        index = {u: n for n, u in enumerate(self.truth.dataset.user_index(self.users))}
        out = []
        for s in self.truth.shifts.itertuples(index=False):
            n = index.get(s.user)
            if n is None:
                continue
            at = int(np.searchsorted(self.rows[n], s.first_row))
            if 0 < at < len(self.rows[n]):
                out.append({"user": n, "kind": s.kind, "session": at})
        return pd.DataFrame(out, columns=["user", "kind", "session"])


@dataclass(frozen=True)
class Simulation:
    """Per session: the user (index), the session number, the clicked slot (-1: none), the
    expected CTR of what was shown and that of the best possible list."""

    population: Population
    users: np.ndarray
    sessions: np.ndarray
    clicked: np.ndarray
    expected: np.ndarray
    best: np.ndarray
    k: int
    shown: np.ndarray  # (sessions, k) dataset item indices shown, -1 where fewer

    def coverage(self) -> float:
        """Distinct items shown over the catalog."""
        distinct = np.unique(self.shown[self.shown >= 0])
        return len(distinct) / self.population.truth.dataset.n_items

    def daily(self, sessions_per_day: int) -> pd.DataFrame:
        """CTR and expected CTR (as a share of the best list's) per simulated day."""
        share = self._share()
        frame = pd.DataFrame(
            {
                "day": self.sessions // sessions_per_day,
                "clicked": self.clicked >= 0,
                "share_of_best": share,
            }
        )
        out = frame.groupby("day").agg(
            ctr=("clicked", "mean"), share_of_best=("share_of_best", "mean")
        )
        return out.reset_index()

    def new_items(self, items: np.ndarray, sessions_per_day: int) -> dict[str, Any]:
        """How ``items`` (dataset indices, released when the simulation began) fared: their
        impressions and clicks, those of the first day, and how many were shown at all."""
        new = np.isin(self.shown, items)  # (sessions, k)
        first_day = (self.sessions // sessions_per_day == 0)[:, None] & new
        rows = np.flatnonzero(self.clicked >= 0)
        hit = self.shown[rows, self.clicked[rows]]
        clicks = int(np.isin(hit, items).sum())
        day_clicks = int(np.isin(hit[self.sessions[rows] < sessions_per_day], items).sum())
        shown_first_day = np.unique(
            self.shown[first_day.any(axis=1)][first_day[first_day.any(axis=1)]]
        )
        return {
            "new_items": len(items),
            "impressions": int(new.sum()),
            "clicks": clicks,
            "ctr": clicks / int(new.sum()) if new.sum() else None,
            "first_day_impressions": int(first_day.sum()),
            "first_day_clicks": day_clicks,
            "shown_on_first_day": int(np.isin(items, shown_first_day).sum()),
            "shown_ever": int(np.isin(items, self.shown).sum()),
        }

    def ctr(self) -> float:
        """Sessions with a click, over sessions."""
        return float((self.clicked >= 0).mean()) if len(self.clicked) else float("nan")

    def recovery(self, reference: Simulation | None = None) -> pd.DataFrame:
        """One row per true shift with ``BEFORE_SHIFT`` sessions before it: how many of the
        user's sessions after the shift passed before an answer's expected CTR, as a share of
        the best list's, was back to ``RECOVERED`` of its mean over those sessions (censored:
        never, in the simulation). With ``reference`` (another simulation of the same
        population, e.g. the live service beside this frozen one) the level to get back to is
        the reference's: a model that was already worse before the shift cannot recover by
        staying as bad as it was."""
        out = []
        own = self._share()
        level_from = (reference or self)._share()
        for s in self.population.shifts().itertuples(index=False):
            mine = self.users == s.user
            order = np.argsort(self.sessions[mine], kind="stable")
            expected = own[mine][order]
            before = level_from[mine][order]
            clicked = self.clicked[mine][order] >= 0
            if s.session < BEFORE_SHIFT or s.session >= len(expected):
                continue
            level = float(before[s.session - BEFORE_SHIFT : s.session].mean())
            after = expected[s.session :]
            back = np.flatnonzero(after >= RECOVERED * level)
            sessions = int(back[0]) if len(back) else len(after)
            # the user's events meanwhile: their own one a session, and their clicks
            events = sessions + int(clicked[s.session : s.session + sessions].sum())
            out.append(
                {
                    "user": self.population.users[s.user],
                    "kind": s.kind,
                    "level": level,
                    "sessions": sessions,
                    "events": events,
                    "censored": not len(back),
                }
            )
        return pd.DataFrame(out, columns=_RECOVERY)

    def _share(self) -> np.ndarray:
        """(sessions,) expected CTR as a share of the best list's."""
        return np.divide(
            self.expected, self.best, out=np.zeros_like(self.expected), where=self.best > 0
        )

    def summary(self, reference: Simulation | None = None) -> dict[str, Any]:
        """CTR, expected CTR, coverage, and the median recovery after abrupt shifts (censored
        count as never; against ``reference``'s levels when given, see `recovery`)."""
        rec = self.recovery(reference)
        abrupt = rec[rec["kind"] == "abrupt"]
        sessions = np.where(abrupt["censored"], np.inf, abrupt["sessions"]).astype(float)
        events = np.where(abrupt["censored"], np.inf, abrupt["events"]).astype(float)
        return {
            "sessions": len(self.clicked),
            "ctr": self.ctr(),
            "expected_ctr": float(self.expected.mean()) if len(self.expected) else float("nan"),
            "best_ctr": float(self.best.mean()) if len(self.best) else float("nan"),
            "coverage": self.coverage(),
            "abrupt_shifts": len(abrupt),
            "median_recovery_sessions": float(np.median(sessions)) if len(abrupt) else None,
            "median_recovery_events": float(np.median(events)) if len(abrupt) else None,
            "censored": int(abrupt["censored"].sum()),
        }


_RECOVERY = ["user", "kind", "level", "sessions", "events", "censored"]


class Platform(Protocol):
    """What simulated users talk to: a recommender that hears what they do. The in-process
    `TrackerPlatform` and the HTTP one of ``driftrec simulate`` (a real service) both are."""

    def recommend(self, user: str, k: int) -> list[str]:
        """The items shown to ``user`` now, best first."""
        ...

    def act(self, user: str, item: str, timestamp: int, event: str) -> None:
        """The user's own doing (a browse, a search), not prompted by a recommendation."""
        ...

    def shown(self, user: str, items: list[str], timestamp: int) -> None:
        """The last answer for ``user`` was shown (impressions)."""
        ...

    def clicked(self, user: str, item: str, timestamp: int) -> None:
        """The user clicked ``item`` of the last answer shown to them."""
        ...


class TrackerPlatform:
    """A `Tracker` in this process: events are ingested, impressions recorded for its
    exposure (demotion and exploration read them)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._requests = 0

    def recommend(self, user: str, k: int) -> list[str]:
        return self.tracker.recommend(user, k).items

    def act(self, user: str, item: str, timestamp: int, event: str) -> None:
        self.tracker.ingest([StoredEvent(user, Event(item, timestamp, event))])

    def shown(self, user: str, items: list[str], timestamp: int) -> None:
        self._requests += 1
        request = f"{self._requests:032x}"
        impressions = [Impression(request, user, i, n, timestamp) for n, i in enumerate(items)]
        new = self.tracker.store.feedback.add_impressions(impressions)
        self.tracker.exposure.record(impressions, new)

    def clicked(self, user: str, item: str, timestamp: int) -> None:
        click = StoredEvent(
            user, Event(item, timestamp, CLICK), request_id=f"{self._requests:032x}"
        )
        self.tracker.ingest([click])
        self.tracker.exposure.engaged([click])


def simulate(
    population: Population,
    platform: Platform,
    sessions: int,
    k: int = 10,
    clicks: ClickModel | None = None,
    seed: int = 0,
    gap: int = 60,
    progress: Callable[[int], None] | None = None,
) -> Simulation:
    """Every user has ``sessions`` sessions, users taking turns. A session tells ``platform``
    the user's own next event, asks it for ``k`` items, reports them shown and the click, if
    any. Simulated time starts at the split and moves ``gap`` seconds a session; ``progress``
    is told of each round of sessions."""
    clicks = clicks or ClickModel()
    rng = np.random.default_rng(seed)
    truth = population.truth
    index = {str(item): n for n, item in enumerate(truth.dataset.item_ids)}
    users, numbers, clicked, expected, best, shown_rows = [], [], [], [], [], []
    had = [set(items) for items in population.had]
    now = population.start_time
    kinds = np.asarray(truth.dataset.event_types, dtype=object)[truth.dataset.events["event"]]
    items = truth.dataset.events["item"].to_numpy()
    for session in range(sessions):
        for u, user in enumerate(population.users):
            now += gap
            if session < len(population.rows[u]):  # the user's own doing comes first
                row = population.rows[u][session]
                had[u].add(int(items[row]))
                platform.act(
                    user, str(truth.dataset.item_ids[items[row]]), now - 1, str(kinds[row])
                )
            answer = [i for i in platform.recommend(user, k) if i in index]
            platform.shown(user, answer, now)
            shown = [index[i] for i in answer]
            mixture = population.interest(u, session)
            interest = mixture[truth.item_category[shown]]
            interest[[n for n, item in enumerate(shown) if item in had[u]]] = 0.0
            slot = clicks.click(interest, rng)
            if slot is not None:
                had[u].add(shown[slot])
                platform.clicked(user, answer[slot], now)
            users.append(u)
            numbers.append(session)
            clicked.append(-1 if slot is None else slot)
            expected.append(clicks.expected_ctr(interest))
            best.append(clicks.best_ctr(mixture, k))
            shown_rows.append(shown + [-1] * (k - len(shown)))
        if progress is not None:
            progress(session)
    return Simulation(
        population,
        np.asarray(users, np.int64),
        np.asarray(numbers, np.int64),
        np.asarray(clicked, np.int64),
        np.asarray(expected, np.float64),
        np.asarray(best, np.float64),
        k,
        np.asarray(shown_rows, np.int64).reshape(len(users), k),
    )


__all__ = [
    "BEFORE_SHIFT",
    "CLICK",
    "RECOVERED",
    "ClickModel",
    "Platform",
    "Population",
    "Simulation",
    "TrackerPlatform",
    "simulate",
]
