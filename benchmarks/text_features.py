"""Text features: free-text queries on data with known categories, and the embedding cache's cost.

1. ``text_queries``: on the synthetic data (every item's categories are known), the content model
   ranks the whole catalog for sentences that name a category, in several phrasings written once
   for every category (not tuned per category): precision@10 = share of the top 10 that belong to
   the named category. The same ranking is what ``driftrec recommend MODEL --text ...`` prints.
2. ``encoding_cache``: encode a catalog's item texts with an empty cache (model load included, as
   a first run pays it), then again with a new encoder on the same cache (median of 3).

Run from the repository root:
  .venv/bin/python benchmarks/text_features.py
"""

from __future__ import annotations

import statistics
import tempfile
import time

from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.loaders import load_dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.models import create
from driftrec.text import TextEncoder, item_texts, text_hash
from driftrec.text import encoder as encoder_module

PHRASINGS = (
    "{}",
    "I am looking for {}",
    "I really enjoy {} lately",
    "recommend me something about {}",
)


def text_queries() -> list[dict]:
    data = generate(SyntheticConfig(seed=0))
    dataset = data.dataset
    model = create("content", progress=False).fit(dataset)
    records = []
    for category in data.categories:
        for phrasing in PHRASINGS:
            sentence = phrasing.format(category)
            top = model.recommend(text=sentence, k=10).items[0]
            in_category = [category in dataset.items["categories"][i] for i in top]
            records.append(
                {
                    "dataset": "synthetic",
                    "model": "content",
                    "category": category,
                    "query": sentence,
                    "metrics": {"Precision@10": sum(in_category) / len(top)},
                }
            )
    return records


def encoding_cache() -> list[dict]:
    records = []
    for name in ("ml-100k", "ml-latest-small"):
        texts = item_texts(load_dataset(DATA / name, name=name))
        with tempfile.TemporaryDirectory() as cache:
            encoder_module._MODELS.clear()  # a first run loads the model too
            start = time.perf_counter()
            TextEncoder(cache_dir=cache, progress=False).encode(texts)
            first = time.perf_counter() - start
            again = []
            for _ in range(3):
                start = time.perf_counter()
                encoder = TextEncoder(cache_dir=cache, progress=False)
                encoder.encode(texts)
                again.append(time.perf_counter() - start)
            stats = encoder.last_stats
        records.append(
            {
                "dataset": name,
                "texts": len(texts),
                "unique_texts": len({text_hash(t) for t in texts}),
                "timings": {
                    "first_seconds": first,
                    "cached_seconds_median": statistics.median(again),
                },
                "cached_run": {"cached": stats.cached, "encoded": stats.encoded},
                "ratio": statistics.median(again) / first,
            }
        )
        print(f"{name}: first {first:.1f}s, cached {statistics.median(again):.3f}s", flush=True)
    return records


def main() -> None:
    queries = text_queries()
    write_results("text_queries", queries)
    by_category: dict[str, list[float]] = {}
    for r in queries:
        by_category.setdefault(r["category"], []).append(r["metrics"]["Precision@10"])
    values = [v for r in by_category.values() for v in r]
    rows = [[c, f"{statistics.mean(v):.2f}", f"{min(v):.2f}"] for c, v in by_category.items()]
    rows.append(["**all**", f"**{statistics.mean(values):.3f}**", f"{min(values):.2f}"])
    phrasings = ", ".join(repr(p) for p in PHRASINGS)
    update_markdown(
        "text_queries",
        "## Free-text queries (text_queries)\n\nSynthetic data, content model, the whole catalog "
        f"ranked for {len(PHRASINGS)} phrasings per category ({phrasings}"
        "); precision@10 = share of the top 10 in the named category.\n\n"
        + markdown_table(["category", "mean precision@10", "worst phrasing"], rows),
    )
    cache = encoding_cache()
    write_results("encoding_cache", cache)
    update_markdown(
        "encoding_cache",
        "## Embedding cache (encoding_cache)\n\nItem texts of a catalog encoded with an empty "
        "cache (model load included), then by a new encoder on the same cache (median of 3).\n\n"
        + markdown_table(
            ["dataset", "texts", "first run s", "cached run s", "cached / first"],
            [
                [
                    r["dataset"],
                    str(r["texts"]),
                    f"{r['timings']['first_seconds']:.1f}",
                    f"{r['timings']['cached_seconds_median']:.3f}",
                    f"{r['ratio']:.2%}",
                ]
                for r in cache
            ],
        ),
    )


if __name__ == "__main__":
    main()
