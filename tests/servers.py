"""Real `driftrec serve` processes for the service tests: started on a free 127.0.0.1 port,
waited for until /health answers, stopped (or killed with SIGKILL) by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from driftrec.client import Client

START_TIMEOUT = 180.0  # seconds: loading torch and a model on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self, api_key: str | None = None) -> Client:
        return Client(self.url, api_key=api_key)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


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
    port = free_port()
    model = [] if model_dir is None else ["--model", str(model_dir)]
    command = [
        sys.executable, "-c", "from driftrec.cli.main import main; main()", "serve",
        *model, "--db", db_url, "--port", str(port), *args,
    ]  # fmt: skip
    handle = log.open("ab")
    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"driftrec serve exited with {process.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill9()
    raise RuntimeError(
        f"driftrec serve did not answer within {START_TIMEOUT} s:\n{server.output()}"
    )
