"""The report document: sections of charts and tables, written as one self-contained HTML file
(plotly's JavaScript inlined once, no network needed to open it) and, on request, each chart as
a PNG (plotly's kaleido, drawing with the system's Chromium)."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from driftrec import __version__
from driftrec.reports import charts
from driftrec.reports.user import UserStory

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1060px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; } .muted { color: #777; font-size: 0.9rem; }
"""


@dataclass
class _Chart:
    name: str
    figure: go.Figure


@dataclass
class Report:
    """Sections added in order; `write` renders them. ``title`` heads the document."""

    title: str = "driftrec report"
    _parts: list[str | _Chart] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)  # chart file names given out

    def _name(self, text: str) -> str:
        """A PNG file name for a chart group: lower-case letters and digits, runs of anything
        else as "_", numbered when two texts give the same name."""
        base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "chart"
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def add_heading(self, text: str, note: str | None = None) -> None:
        """A section heading, with a line of context under it."""
        self._parts.append(f"<h2>{html.escape(text)}</h2>")
        if note:
            self._parts.append(f'<p class="muted">{html.escape(note)}</p>')

    def add_chart(self, name: str, figure: go.Figure) -> None:
        """``name`` is the chart's PNG file name (without .png)."""
        self._parts.append(_Chart(name, figure))

    def add_table(self, header: list[str], rows: list[list[Any]], caption: str = "") -> None:
        """A table; cells that are `_Text` are aligned left, numbers right."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def add_user(self, story: UserStory) -> None:
        """A user's interest over time (true beside estimated where known), drift and detected
        shifts, profiles now, and the current recommendations with their explanations."""
        colours = charts.topic_colours(story.topics)
        slug = self._name(story.user)
        drift = story.interests.get("drift") or {}
        self.add_heading(
            f"User {story.user}",
            f"{story.timeline['events']:,} item events; drift score now"
            f" {_number(story.interests.get('drift_score'))}; detected shifts:"
            f" {len(story.timeline['shifts'])}"
            + (f"; true shifts: {len(story.shifts)}" if story.shifts is not None else "")
            + ("; a shift is under way now" if drift.get("shift_detected") else ""),
        )
        self.add_chart(
            f"{slug}_interests", charts.interest_area(story.timeline, colours, story.truth)
        )
        self.add_chart(f"{slug}_drift", charts.drift_chart(story.timeline, story.shifts))
        self.add_chart(f"{slug}_profiles", charts.profile_bars(story.interests, colours))
        rows = []
        for rank, rec in enumerate(story.recommendations, 1):
            why = story.why.get(rec["item"], {})
            reasons = "; ".join(
                f"{e['title'] or e['item']} ({e['event']}, {e['contribution']:+.3f})"
                for e in why.get("events", [])[:3]
            )
            topics_why = ", ".join(
                f"{t['topic']} {t['contribution']:+.3f}" for t in why.get("topics", [])[:3]
            )
            rows.append(
                [rank, rec["item"], _Text(rec["title"]), _Text(", ".join(rec["categories"])),
                 f"{rec['score']:.3f}", _Text(reasons or "–"), _Text(topics_why or "–")]
            )  # fmt: skip
        self.add_table(
            ["#", "item", "title", "categories", "score", "raised most by", "by topic"],
            rows,
            f"Recommended now ({story.interests.get('model_version', '')}); explanations: the"
            " score change when each of the user's recent events is left out",
        )

    def add_results(self, records: list[dict[str, Any]], title: str) -> None:
        """A run's results JSON: replay records get the per-window chart and table, anything
        else a table of its scalar fields."""
        self.add_heading(title)
        if records and all("windows" in r and "overall" in r for r in records):
            self.add_chart(self._name(title), charts.replay_windows(records))
            k = records[0]["k"]
            self.add_table(
                ["model", f"HR@{k}", f"NDCG@{k}", "events", "events/s", "policy"],
                [
                    [
                        r["model"],
                        f"{r['overall'][f'hr@{k}']:.4f}",
                        f"{r['overall'][f'ndcg@{k}']:.4f}",
                        f"{r['overall']['events']:,}",
                        f"{r.get('events_per_s') or 0:,.0f}",
                        _Text(r.get("policy", "")),
                    ]
                    for r in records
                ],
            )
            return
        flat = [_flatten(r) for r in records]
        columns = [c for c in dict.fromkeys(k for r in flat for k in r) if c not in _NOISE]
        self.add_table(columns, [[r.get(c, "") for c in columns] for r in flat])

    def write(self, path: Path, png_dir: Path | None = None) -> list[Path]:
        """Write the HTML to ``path`` (and each chart to ``png_dir``/NAME.png); the paths
        written."""
        written = []
        body = []
        for n, part in enumerate(self._parts):
            if isinstance(part, str):
                body.append(part)
                continue
            body.append(
                pio.to_html(part.figure, full_html=False, include_plotlyjs=False, div_id=f"c{n}")
            )
            if png_dir is not None:
                png_dir.mkdir(parents=True, exist_ok=True)
                target = png_dir / f"{part.name}.png"
                _write_png(part.figure, target)
                written.append(target)
        made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        document = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(self.title)}</h1>"
            f'<p class="muted">driftrec {__version__}, {made}</p>'
            + "".join(body)
            + "</body></html>"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document, encoding="utf-8")
        return [path, *written]


_NOISE = {"command", "machine"}


class _Text(str):
    """A cell aligned left (text rather than a figure)."""


def _cell(value: Any) -> str:
    text = _number(value) if isinstance(value, float) else str(value)
    klass = ' class="text"' if isinstance(value, _Text) else ""
    return f"<td{klass}>{html.escape(text)}</td>"


def _number(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as "outer.inner" columns; lists are shown as JSON."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = _Text(json.dumps(value)[:80])
        else:
            out[name] = value
    return out


PNG_ATTEMPTS = 3


def _write_png(figure: Any, target: Path) -> None:
    """``figure`` as a PNG through kaleido, tried again when kaleido asked its Chromium page to
    draw before the page had loaded kaleido's own script (a race on a loaded machine: the error
    says "kaleido_scopes is not defined"); any other error is raised at once."""
    for attempt in range(PNG_ATTEMPTS):
        try:
            figure.write_image(target)
            return
        except Exception as err:
            if attempt == PNG_ATTEMPTS - 1 or "kaleido_scopes is not defined" not in str(err):
                raise
            time.sleep(0.5 * (attempt + 1))


__all__ = ["Report"]
