"""A `driftrec serve` of its own: a child process on a free 127.0.0.1 port, started and waited
for until /health answers, then stopped (or killed). What `driftrec simulate` drives, and what
the service tests start."""

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
class ServiceProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(
        cls,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> ServiceProcess:
        """`driftrec serve ARGS --port P` (P free), its output appended to ``log``."""
        port = free_port()
        command = [
            sys.executable, "-c", "from driftrec.cli.main import main; main()", "serve",
            *args, "--port", str(port),
        ]  # fmt: skip
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        served = cls(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"driftrec serve exited with {process.returncode}:\n{served.output()}"
                )
            try:
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    return served
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        served.kill9()
        raise RuntimeError(f"driftrec serve did not answer within {timeout} s:\n{served.output()}")

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


__all__ = ["START_TIMEOUT", "ServiceProcess", "free_port"]
