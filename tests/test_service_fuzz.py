"""Fuzzing the service through its OpenAPI schema (schemathesis): over a thousand generated
requests, valid and invalid, across every route of a real `driftrec serve` process. None may be
a 5xx; every 4xx names the field or the limit at fault."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from servers import Server, start_server

from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.models import create

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EXAMPLES = 80  # per route and mode: 10 routes with inputs x 2 modes x 80, and the 2 without


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    """A served model over SQLite, or over a schema of its own on the PostgreSQL server (which
    refuses some text SQLite takes: NUL characters)."""
    home = tmp_path_factory.mktemp("fuzz")
    data = generate(
        SyntheticConfig(n_users=30, n_items=60, events_per_user=(22, 40), min_segment=5, seed=2)
    )
    data.save(home / "data")
    model = create("als", factors=8).fit(data.dataset)
    model.save(home / "model", info={"dataset": str(home / "data")})
    schema = f"fuzz_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'events.db'}"
    else:
        with sa.create_engine(PG_ADMIN).begin() as connection:
            connection.execute(sa.text(f"create schema {schema}"))
        url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    server = start_server(home / "model", url, home / "log", "--max-batch", "50")
    yield server, url
    server.stop()
    if request.param == "postgresql":
        with sa.create_engine(PG_ADMIN).begin() as connection:
            connection.execute(sa.text(f"drop schema {schema} cascade"))


def _names_the_fault(detail: object) -> bool:
    """A 4xx body: a list of errors, each with a non-empty location and a message."""
    return isinstance(detail, list) and all(
        isinstance(e, dict) and e.get("loc") and e.get("msg") for e in detail
    )


def test_no_generated_request_gets_a_5xx(fuzzed: tuple[Server, str]) -> None:
    server, url = fuzzed
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    sent: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /events", "GET /users/{user}/recommendations", "GET /users/{user}/interests",
        "GET /users/{user}/timeline", "GET /users/{user}/recommendations/{item}/why",
        "PUT /items/{item}", "PUT /items",
        "DELETE /users/{user}", "GET /health", "GET /metrics", "POST /admin/reload",
        "GET /overview", "GET /users",
    }  # fmt: skip
    for operation in operations:
        for mode in GenerationMode:
            _fuzz(operation, mode, server.url, sent, failures)
    assert not failures, failures[:5]
    assert sum(sent.values()) >= 1_000, sent
    assert server.process.poll() is None  # still serving
    engine = sa.create_engine(url)
    with engine.connect() as connection:  # every stored event is whole
        broken = 'select count(*) from events where "user" is null or timestamp is null'
        assert connection.execute(sa.text(broken)).scalar() == 0
    engine.dispose()


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    url: str,
    sent: Counter[str],
    failures: list[str],
) -> None:
    """Send up to `EXAMPLES` generated requests to one route; record 5xx and vague 4xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: schemathesis.Case) -> None:
        if operation.label == "POST /admin/reload" and isinstance(case.body, dict):
            case.body.pop("model_dir", None)  # reload the served model, not a fuzzed path
        response = case.call(base_url=url, timeout=60)
        sent[operation.label] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.text}")
        elif 400 <= response.status_code < 500 and not _names_the_fault(
            response.json().get("detail")
        ):
            failures.append(f"{case.method} {case.formatted_path}: {response.text}")

    try:
        run()
    except Unsatisfiable:  # a route with no inputs (GET /health) has no invalid requests
        assert mode is GenerationMode.NEGATIVE, operation.label
