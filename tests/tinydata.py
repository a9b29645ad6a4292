"""Tiny hand-shaped datasets shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset


def clustered(seed: int = 0, per_user: int = 12) -> Dataset:
    """30 users x 40 items. Users u00-u14 (group A) consume 12 of items 0-19, users u15-u29
    (group B) 12 of items 20-39. Item ids are "0".."39", so item index j is item id "j"."""
    rng = np.random.default_rng(seed)
    rows, t = [], 0
    for u in range(30):
        offset = 0 if u < 15 else 20
        for j in rng.choice(20, per_user, replace=False):
            rows.append((f"u{u:02d}", str(offset + j), t))
            t += 1
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
