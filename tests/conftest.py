"""Shared test set-up: embeddings go to a per-session cache, never into the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftrec.data.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="session", autouse=True)
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point DRIFTREC_CACHE at a session directory unless the caller chose one (to reuse it)."""
    if "DRIFTREC_CACHE" not in os.environ:
        os.environ["DRIFTREC_CACHE"] = str(tmp_path_factory.mktemp("driftrec-cache"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 40-user synthetic dataset, one per test module (the CLI tests read it)."""
    config = SyntheticConfig(
        n_users=40, n_items=60, events_per_user=(22, 40), min_segment=5, seed=1
    )
    return generate(config).save(tmp_path_factory.mktemp("synthetic") / "data")
