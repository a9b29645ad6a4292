"""The API's contract: what clients send and what they get back (pydantic models; the OpenAPI
schema at /docs is generated from them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from driftrec.data.fields import TIMESTAMP_RANGE
from driftrec.params import FLOAT32


def check_id(value: str) -> str:
    """A user or item id: it goes into URL paths and every database, so no "/", no control
    characters, no surrounding white space, not "." or ".."."""
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if "/" in value or value in (".", ".."):
        raise ValueError("must not contain '/' nor be '.' or '..' (ids are parts of URLs)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def check_text(value: str) -> str:
    """Free text: anything but the NUL character, which databases refuse in text."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


Id = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_id)]
RequestId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{32}$",
        description="the `request_id` of a recommendation answer (32 lower-case hex digits)",
    ),
]
Text = Annotated[str, AfterValidator(check_text)]
Timestamp = Annotated[int, Field(ge=TIMESTAMP_RANGE[0], le=TIMESTAMP_RANGE[1])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a typo: say so


class EventIn(Strict):
    """One behaviour event. ``item`` is null for a search (then ``text`` holds the query)."""

    user: Id
    item: Id | None = None
    timestamp: Timestamp | None = Field(None, description="Unix seconds; default: now")
    event: Annotated[Text, Field(min_length=1, max_length=64)] = "interaction"
    value: float = 1.0
    text: Text | None = None
    event_id: Annotated[Text, Field(min_length=1, max_length=128)] | None = Field(
        None, description="the client's id: a retry with the same user and event_id is stored once"
    )
    request_id: RequestId | None = Field(
        None, description="the answer this event is an outcome of (a click on a recommendation)"
    )

    @field_validator("value")
    @classmethod
    def _float32(cls, value: float) -> float:
        if not FLOAT32.allows(value):
            raise ValueError("must be a finite number within float32 range (|v| < 3.4e38)")
        return value


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1)


def _shape(body: Any) -> str:
    return "batch" if isinstance(body, dict) and "events" in body else "event"


EventsIn = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventIn, Tag("event")],
    Discriminator(_shape),
]


class Rejected(BaseModel):
    index: int = Field(description="position of the event in the request")
    field: str
    reason: str


class EventsOut(BaseModel):
    accepted: int = Field(
        description="events stored now (durable) and applied; with `--ingest stream`: in the"
        " stream (durable there) and applied, stored by a consumer"
    )
    duplicates: int = Field(
        description="retries of an event_id already stored: not stored again (with `--ingest"
        " stream` a retry is dropped when a consumer stores it, and counted there)"
    )
    rejected: list[Rejected]
    model_version: str


class RecommendedItem(BaseModel):
    item: str
    score: float | None = Field(description="the model's score; null in an exploration slot")
    title: str
    categories: list[str]
    exploration: bool = Field(
        False, description="shown to give an item with little exposure a chance (--explore)"
    )


class RecommendationsOut(BaseModel):
    user: str
    items: list[RecommendedItem]
    source: Literal["model", "search", "popular"]
    model_version: str
    request_id: str = Field(
        description="name it in the impressions and outcomes (clicks) of this answer"
    )
    variant: str = Field(description='the A/B variant that answered ("main" without one)')


class ImpressionsIn(Strict):
    """What the client showed of an answer: the items in the order of their slots."""

    request_id: RequestId
    user: Id
    items: list[Id] = Field(min_length=1, description="shown items, slot 0 first")
    timestamp: Timestamp | None = Field(None, description="Unix seconds; default: now")


class ImpressionsOut(BaseModel):
    accepted: int = Field(description="impressions stored now (durable)")
    duplicates: int = Field(description="impressions of this request and item already stored")


class OnlineGroup(BaseModel):
    group: str = Field(
        description='the variant, model version or slot (0: first); "(unlinked)": impressions'
        ' of a request the service never served; "all" with by=all'
    )
    window_start: int | None = Field(description="the clock window's start; null: all time")
    impressions: int
    requests: int
    users: int
    clicks: int = Field(description="impressions with an outcome other than a dismissal")
    ctr: float | None
    conversions: int = Field(description="impressions with a purchase")
    conversion_rate: float | None
    ndcg_on_clicks: float | None = Field(
        description="mean over requests with a click of DCG(clicked slots) / ideal DCG"
    )
    dismissals: int
    no_outcome: int = Field(description="impressions with no outcome at all")
    unlinked_outcomes: int = Field(description="outcomes naming a request that match no impression")


class ComparisonOut(BaseModel):
    control: str
    treatment: str
    control_impressions: int
    treatment_impressions: int
    control_users: int
    treatment_users: int
    control_ctr: float | None
    treatment_ctr: float | None
    difference: float | None = Field(description="treatment CTR minus control CTR")
    low: float | None = Field(description="95% bootstrap interval of the difference (users)")
    high: float | None
    p_value: float | None
    verdict: Literal["better", "worse", "no difference found", "too small to decide"]


class OnlineMetricsOut(BaseModel):
    by: Literal["all", "variant", "model_version", "slot"]
    window_seconds: int | None
    groups: list[OnlineGroup]
    impressions: int
    unlinked_impressions: int = Field(description="impressions whose request has no served list")
    unlinked_outcomes: int
    comparisons: list[ComparisonOut] = Field(
        description="with by=variant: each variant against the first (bootstrap over users)"
    )


class TopicShare(BaseModel):
    topic: str
    share: float


class WeighedEvent(BaseModel):
    item: str | None
    title: str
    timestamp: int
    event: str
    contribution: float


class DriftOut(BaseModel):
    """The user's drift detector (docs/evaluation.md, "Drift detection")."""

    evidence: float = Field(description="bits of surprise gathered towards an alarm")
    threshold: float = Field(description="the evidence that raises an alarm")
    shift_detected: bool = Field(
        description="an alarm among the user's newest events (its warm-up count, 10 by default)"
    )
    last_shift: int | None = Field(description="timestamp of the event of the newest alarm")
    events_since_shift: int | None
    shifts: list[int] = Field(description="timestamps of every alarm among the events held")


class InterestsOut(BaseModel):
    user: str
    events: int
    searches: list[str]
    topics_from: Literal["categories", "clusters"] | None
    long_term: list[TopicShare]
    short_term: list[TopicShare]
    drift_score: float | None = Field(
        description="Jensen-Shannon divergence of the short- and long-term profiles, 0..1"
    )
    drift: DriftOut | None = Field(description="the drift detector; null without topics")
    gate: float | None = Field(description="the fused model's short-term weight, if it has one")
    influential_events: list[WeighedEvent]
    model_version: str


class TimelinePoint(BaseModel):
    timestamp: int
    event: int = Field(description="position among the user's item events, oldest first")
    short_term: list[float] = Field(description="shares of `topics`, in their order")
    long_term: list[float]
    drift_score: float
    evidence: float


class TimelineOut(BaseModel):
    user: str
    events: int
    topics: list[str] = Field(description="the user's main topics, the columns of every point")
    points: list[TimelinePoint]
    shifts: list[int] = Field(description="timestamps of the events that raised a drift alarm")
    threshold: float = Field(description="the detector's evidence that raises an alarm (bits)")
    model_version: str


class TopicContribution(BaseModel):
    topic: str
    contribution: float


class WhyOut(BaseModel):
    user: str
    item: str
    method: str
    explained_events: int
    events: list[WeighedEvent]
    topics: list[TopicContribution]
    note: str | None
    model_version: str


class ItemIn(Strict):
    title: Text = ""
    text: Text = ""
    categories: list[Annotated[Text, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=100
    )


class ItemWithId(ItemIn):
    item: Id


class ItemBatch(Strict):
    items: list[ItemWithId] = Field(min_length=1)


class ItemsOut(BaseModel):
    added: list[str]
    updated: list[str]
    recommendable: bool = Field(
        description="whether the served model can rank new items now (it reads text)"
    )
    model_version: str


class ErasedOut(BaseModel):
    user: str
    events: int = Field(description="stored events erased")
    live_state: bool
    training_history: bool = Field(description="the user was in the served model's training data")
    model_directory_rewritten: bool
    note: str


class VariantOut(BaseModel):
    name: str
    share: float
    model: str
    model_version: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    model: str
    model_version: str
    items: int
    index: Literal["exact", "approximate", "none"]
    store: str
    state: Literal["process", "redis"] = Field(
        description="where users' live events are kept: this process, or Redis (shared by replicas)"
    )
    variants: list[VariantOut]


class MinuteOut(BaseModel):
    minute: int = Field(description="the clock minute's start, Unix seconds")
    events: int = Field(description="events accepted (stored) in the minute")
    requests: int = Field(
        description="API requests answered (not the dashboard, /overview, /health, /metrics)"
    )


class LatencyOut(BaseModel):
    window_seconds: int = Field(description="the percentiles cover the last this many seconds")
    requests: int = Field(description="API requests in the window")
    p50_ms: float | None = Field(description="median latency (±7.5%); null without requests")
    p99_ms: float | None


class OverviewOut(BaseModel):
    """Aggregate live figures of the service; no user is named."""

    minutes: list[MinuteOut] = Field(description="the last clock minutes, oldest first")
    active_users: int = Field(
        description="distinct users with an accepted event in the last `active_window_seconds`"
        " (this clock minute and the four before)"
    )
    active_window_seconds: int
    requests_per_second: float = Field(description="API requests over the last 60 seconds")
    latency: LatencyOut
    live_users: int = Field(description="users whose state is held in memory")
    uptime_seconds: float
    model: str
    model_version: str
    items: int
    store: str = Field(description="the event store's SQL dialect")
    event_types: list[str] = Field(description="the event types the served model knows")


class UserMatch(BaseModel):
    user: str
    stored: bool = Field(description="the event store holds events of the user")
    trained: bool = Field(description="a training user of the served model")


class UsersOut(BaseModel):
    query: str
    users: list[UserMatch] = Field(description="in id order")
    pseudonymised: bool = Field(
        description="ids are pseudonymised (--secret-env): `q` is then matched as a whole id"
    )


class ReloadIn(Strict):
    model_dir: str | None = Field(None, description="default: the directory served now")
    variant: str | None = Field(None, description="the A/B variant to reload; default: the first")


class ReloadOut(BaseModel):
    model: str
    model_version: str
    previous_version: str
