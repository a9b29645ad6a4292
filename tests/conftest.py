"""Shared test set-up: embeddings go to a per-session cache, never into the user's home."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point DRIFTREC_CACHE at a session directory unless the caller chose one (to reuse it)."""
    if "DRIFTREC_CACHE" not in os.environ:
        os.environ["DRIFTREC_CACHE"] = str(tmp_path_factory.mktemp("driftrec-cache"))
