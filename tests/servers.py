"""Real `driftrec serve` processes for the service tests (`driftrec.cli.process`): started on a
free 127.0.0.1 port, waited for until /health answers, stopped (or killed with SIGKILL)."""

from __future__ import annotations

from pathlib import Path

from driftrec.cli.process import START_TIMEOUT, ServiceProcess, free_port

Server = ServiceProcess


def start_server(
    model_dir: Path | None,
    db_url: str,
    log: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> Server:
    """`driftrec serve --model model_dir --db db_url ARGS` as its own process (no --model
    when ``model_dir`` is None: ARGS name the models, e.g. with --variant)."""
    model = [] if model_dir is None else ["--model", str(model_dir)]
    return ServiceProcess.start([*model, "--db", db_url, *args], log, env, timeout)


__all__ = ["Server", "free_port", "start_server"]
