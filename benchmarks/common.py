"""Shared plumbing for benchmark scripts: data location, machine facts, results JSON, BENCHMARKS.md.

Each benchmark writes ``benchmarks/results/<name>.json`` (a list of records: dataset, model,
protocol, metrics by name, timings in seconds, command) and replaces its own section of
BENCHMARKS.md, between ``<!-- name:start -->`` and ``<!-- name:end -->``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRIFTREC_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
MARKDOWN = ROOT / "BENCHMARKS.md"


def command() -> str:
    """The command line that produced the results, as a user would type it from the repo root."""
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def write_results(name: str, records: list[dict[str, Any]]) -> Path:
    """benchmarks/results/<name>.json with the command and machine in every record."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    facts = {"command": command(), "machine": machine()}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps([{**r, **facts} for r in records], indent=2, default=str) + "\n")
    return path


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def update_markdown(name: str, body: str) -> None:
    """Replace (or append) this benchmark's section of BENCHMARKS.md."""
    facts = machine()
    section = (
        f"<!-- {name}:start -->\n{body.strip()}\n\nCommand: `{command()}`  \n"
        f"Machine: {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}, "
        f"torch {facts['torch']}\n<!-- {name}:end -->"
    )
    text = MARKDOWN.read_text() if MARKDOWN.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + section + "\n")
    )
    MARKDOWN.write_text(text)
