"""Wall time of the whole CLI pipeline on ml-100k: import, then fit and evaluate every baseline.

Target (foundation issue): under 2 minutes on the 2-core machine. Each run is a fresh process, as
a user would run it; the median of ``--runs`` runs is reported.

Run from the repository root:  .venv/bin/python benchmarks/pipeline_time.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATA, markdown_table, update_markdown, write_results

MODELS = ("pop", "recent-pop", "itemknn", "bpr", "als", "bias")


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("driftrec"))
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ml100k"
        for _ in range(args.runs):
            import_s = timed([cli, "import", str(DATA / "ml-100k"), "--out", str(data)])
            models = [arg for m in MODELS for arg in ("-m", m)]
            eval_s = timed([cli, "evaluate", str(data), *models, "-k", "10", "-k", "20"])
            records.append(
                {
                    "dataset": "ml-100k",
                    "model": "+".join(MODELS),
                    "protocol": "loo",
                    "metrics": {},
                    "timings": {
                        "import_seconds": import_s,
                        "evaluate_seconds": eval_s,
                        "total_seconds": import_s + eval_s,
                    },
                }
            )
    write_results("pipeline_time", records)
    median = {k: statistics.median(r["timings"][k] for r in records) for k in records[0]["timings"]}
    rows = [[k.replace("_seconds", ""), f"{v:.1f}"] for k, v in median.items()]
    body = (
        "## CLI pipeline time on ml-100k\n\n"
        f"`driftrec import` then `driftrec evaluate` with all {len(MODELS)} baselines "
        f"({', '.join(MODELS)}) at k=10 and 20, each a fresh process; median of {args.runs} "
        "runs, seconds (target: under 120).\n\n" + markdown_table(["step", "median s"], rows)
    )
    update_markdown("pipeline_time", body)


if __name__ == "__main__":
    main()
