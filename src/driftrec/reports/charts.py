"""The report's charts, as plotly figures: one function per chart, each taking plain data.

Topics keep one colour everywhere (estimated beside true shares, every user), dates are UTC, and
every figure is sized to print as a PNG for docs as well as to sit in the HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.D3 + qualitative.Pastel
WIDTH, HEIGHT = 1000, 380
ALARM, TRUTH = "#d62728", "#555555"


def topic_colours(topics: Sequence[str]) -> dict[str, str]:
    """A colour per topic, stable for a given order of topic names."""
    return {t: PALETTE[n % len(PALETTE)] for n, t in enumerate(topics)}


def _dates(timestamps: Sequence[int]) -> pd.DatetimeIndex:
    return pd.to_datetime(pd.Series(timestamps, dtype="int64"), unit="s", utc=True)


def interest_area(
    timeline: dict[str, Any], colours: dict[str, str], truth: pd.DataFrame | None = None
) -> go.Figure:
    """Short-term interest shares over time as a stacked area (the service's timeline); with
    ``truth`` (timestamp + one column per category), the true shares in a second panel."""
    rows = 2 if truth is not None else 1
    titles = ["estimated (short-term profile)"] + (["true mixture"] if truth is not None else [])
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles,
                        vertical_spacing=0.12)  # fmt: skip
    points = timeline["points"]
    when = _dates([p["timestamp"] for p in points])
    for j, topic in enumerate(timeline["topics"]):
        fig.add_trace(
            go.Scatter(
                x=when,
                y=[p["short_term"][j] for p in points],
                name=topic,
                stackgroup="est",
                mode="lines",
                line={"width": 0.5, "color": colours.get(topic)},
                legendgroup=topic,
            ),
            row=1,
            col=1,
        )
    if truth is not None:
        true_when = _dates(truth["timestamp"].tolist())
        for topic in [c for c in truth.columns if c != "timestamp"]:
            if not truth[topic].any():
                continue
            fig.add_trace(
                go.Scatter(
                    x=true_when,
                    y=truth[topic],
                    name=topic,
                    stackgroup="true",
                    mode="lines",
                    line={"width": 0.5, "color": colours.get(topic)},
                    legendgroup=topic,
                    showlegend=topic not in timeline["topics"],
                ),
                row=2,
                col=1,
            )
    fig.update_yaxes(range=[0, 1], title_text="share")
    fig.update_layout(
        title="Interest over time", width=WIDTH, height=HEIGHT * rows, template="plotly_white"
    )
    return fig


def drift_chart(timeline: dict[str, Any], shifts: pd.DataFrame | None = None) -> go.Figure:
    """The drift score and the detector's evidence over time, its alarms as red lines, and the
    true change points (grey line: abrupt; grey band: a gradual blend) where known."""
    points = timeline["points"]
    when = _dates([p["timestamp"] for p in points])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=when, y=[p["drift_score"] for p in points], name="drift score", mode="lines"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=when,
            y=[p["evidence"] for p in points],
            name="detector evidence (bits)",
            mode="lines",
            line={"dash": "dot", "color": "#ff7f0e"},
        ),
        secondary_y=True,
    )
    for n, at in enumerate(_dates(timeline["shifts"])):
        fig.add_vline(x=at, line={"color": ALARM, "width": 2, "dash": "dash"})
        fig.add_trace(
            go.Scatter(
                x=[at],
                y=[0],
                mode="markers",
                marker={"color": ALARM, "symbol": "x", "size": 10},
                name="detected shift",
                showlegend=n == 0,
                legendgroup="alarm",
            )
        )
    if shifts is not None:
        for n, s in enumerate(shifts.itertuples(index=False)):
            start, end = _dates([s.timestamp, s.end_timestamp])
            if s.kind == "abrupt":
                fig.add_vline(x=start, line={"color": TRUTH, "width": 1})
            else:
                fig.add_vrect(x0=start, x1=end, fillcolor=TRUTH, opacity=0.15, line_width=0)
            fig.add_trace(
                go.Scatter(
                    x=[start],
                    y=[0],
                    mode="markers",
                    name="true shift",
                    showlegend=n == 0,
                    marker={"color": TRUTH, "symbol": "triangle-up", "size": 9},
                    legendgroup="truth",
                )
            )
    fig.update_yaxes(title_text="drift score (JS divergence)", range=[0, 1], secondary_y=False)
    threshold = timeline.get("threshold")
    top = max([p["evidence"] for p in points] + [threshold or 0.0]) * 1.15 or 1.0
    if threshold is not None:
        fig.add_hline(
            y=threshold, line={"color": "#ff7f0e", "width": 1, "dash": "dot"}, secondary_y=True,
            annotation_text="alarm threshold", annotation_position="top left",
        )  # fmt: skip
    fig.update_yaxes(title_text="evidence (bits)", range=[0, top], secondary_y=True)
    fig.update_layout(title="Drift", width=WIDTH, height=HEIGHT, template="plotly_white")
    return fig


def profile_bars(interests: dict[str, Any], colours: dict[str, str]) -> go.Figure:
    """The long- and short-term profiles `/interests` serves now, side by side."""
    fig = go.Figure()
    for name, key in (("long-term", "long_term"), ("short-term", "short_term")):
        shares = interests[key]
        fig.add_trace(
            go.Bar(
                y=[s["topic"] for s in shares],
                x=[s["share"] for s in shares],
                name=name,
                orientation="h",
                marker={
                    "color": [colours.get(s["topic"]) for s in shares],
                    "opacity": 0.55 if key == "long_term" else 1.0,
                },
            )
        )
    fig.update_layout(
        title="Interest profiles now (pale: long-term, solid: short-term)", barmode="group",
        width=WIDTH, height=HEIGHT, template="plotly_white", xaxis={"range": [0, 1]},
        yaxis={"autorange": "reversed"},
    )  # fmt: skip
    return fig


def replay_windows(records: list[dict[str, Any]]) -> go.Figure:
    """HR@k per window of a replay, one line per model (`driftrec replay --json` records)."""
    fig = go.Figure()
    for r in records:
        k = r["k"]
        fig.add_trace(
            go.Scatter(
                x=[w["window"] for w in r["windows"]],
                y=[w[f"hr@{k}"] for w in r["windows"]],
                name=r["model"],
                mode="lines+markers",
            )
        )
    k = records[0]["k"] if records else 10
    fig.update_layout(
        title=f"Replay: HR@{k} per window", xaxis_title="window", yaxis_title=f"HR@{k}",
        width=WIDTH, height=HEIGHT, template="plotly_white",
    )  # fmt: skip
    return fig


__all__ = [
    "drift_chart",
    "interest_area",
    "profile_bars",
    "replay_windows",
    "topic_colours",
]
