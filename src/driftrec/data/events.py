"""One behaviour event as a client sends it, before it has indices: what a live query carries.

It has the fields a stored event has (docs/data-format.md), so a model answering a live request
sees the same inputs it learned from: real times for time-gap embeddings and day half-lives,
event types for event embeddings, values for ratings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """A user's event: an item they acted on (None for a search with no item), when (Unix
    seconds), how (an event type the model knows), with what value and text.

    Models read the item events, as in training; the text is carried for the store (the content
    model reads the training-time texts of known users, not yet a live event's text)."""

    item: str | None
    timestamp: int
    event: str = "interaction"
    value: float = 1.0
    text: str | None = None


__all__ = ["Event"]
