"""`driftrec serve`: the HTTP service over a model directory and an event store.

With no model it first trains the default one on the built-in synthetic data (kept under
``runs/serve`` and reused next time), so the README alone is enough to try the API."""

from __future__ import annotations

from pathlib import Path

from driftrec.cli.output import console
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.experiment import train_model
from driftrec.models import create
from driftrec.models.base import MODEL_MARKER
from driftrec.serving import Settings

DEFAULT_HOME = Path("runs/serve")
# The default served model: SASRec reading item text, so new items and searches work at once.
DEFAULT_MODEL = ("sasrec", {"features": "text"})


def default_model(home: Path = DEFAULT_HOME, users: int = 500) -> Path:
    """The default model directory under ``home``, trained on synthetic data if not there."""
    model_dir = home / "model"
    if (model_dir / MODEL_MARKER).is_file():
        return model_dir
    with console.status("no --model given: generating synthetic users with drifting interests"):
        data = generate(SyntheticConfig(n_users=users, seed=0))
        data.save(home / "data")
    name, params = DEFAULT_MODEL
    model = create(name, **params)
    console.print(f"training the default {name} model on {data.dataset.n_events:,} events")
    train_model(model, data.dataset, "all")
    model.save(model_dir, info={"dataset": str((home / "data").resolve()), "protocol": "all"})
    return model_dir


def default_db(model_dir: Path) -> str:
    """A SQLite file next to the model directory."""
    return f"sqlite:///{model_dir.resolve().parent / (model_dir.resolve().name + '-events.db')}"


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from driftrec.serving import create_app
    from driftrec.serving.service import Service

    with console.status(f"loading {settings.model_dir}"):
        service = Service(settings)

    console.print(
        f"driftrec serving {settings.model_dir} on http://{host}:{port} (API docs: /docs),"
        f" events in {settings.db_url.split('@')[-1]}"
        + (", API key required" if settings.api_key else "")
    )
    # no access log: request paths name users; /metrics counts requests by route instead
    uvicorn.run(
        create_app(settings, service), host=host, port=port, access_log=False, log_level="warning"
    )


__all__ = ["default_db", "default_model", "serve"]
