"""An on-disk cache of text embeddings, so each text goes through the language model only once.

One SQLite file per model id (``<dir>/<safe model id>.sqlite``): a row is (sha256 of the text,
float32 vector). SQLite gives atomic transactions for free, so a run killed mid-write never leaves
a half-written vector, and WAL mode lets several processes read while one writes. One cache
object may be used from several threads (the service's request threads): a lock serialises them.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

_CHUNK = 500  # parameters per query: under SQLite's historic limit of 999 host parameters


def text_hash(text: str) -> str:
    """The cache key of a text: sha256 hex of its utf-8 bytes (exact text, no normalisation)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def safe_name(model_id: str) -> str:
    """A file name for a model id: anything beyond letters, digits and ``._@-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", model_id).strip(".") or "model"


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class EmbeddingCache:
    """Vectors of one model, keyed by `text_hash`; all vectors share one dimension."""

    def __init__(self, directory: str | Path, model_id: str) -> None:
        self.directory = Path(directory)
        self.model_id = model_id
        self.path = self.directory / f"{safe_name(model_id)}.sqlite"
        self.directory.mkdir(parents=True, exist_ok=True)
        # timeout: another process writing the same cache holds the lock for one short transaction
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        self._lock = threading.RLock()  # one statement at a time on the shared connection
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; fewer fsyncs
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings"
                " (hash TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('model_id', ?)", (model_id,)
            )
        stored = self._meta("model_id")
        if stored != model_id:  # two ids mapped to one file name: refuse rather than mix vectors
            self._conn.close()
            raise ValueError(f"{self.path} holds vectors of model {stored!r}, not {model_id!r}")

    # ------------------------------------------------------------------ metadata
    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def dim(self) -> int | None:
        """Dimension of the stored vectors (None while the cache is empty)."""
        value = self._meta("dim")
        return None if value is None else int(value)

    # ------------------------------------------------------------------ reads and writes
    def get(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (missing ones are simply absent from the result)."""
        with self._lock:
            return self._get(hashes)

    def _get(self, hashes: list[str]) -> dict[str, np.ndarray]:
        dim = self.dim
        if dim is None or not hashes:
            return {}
        width = dim * 4
        unique = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT hash, vector FROM embeddings WHERE hash IN ({marks})", tuple(chunk)
            )
            for key, blob in rows:
                if len(blob) == width:  # a damaged row counts as missing: it is re-encoded
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (one row each) in one transaction: all of them are written or none."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(hashes):
            raise ValueError(
                f"put: {len(hashes)} hash(es) but vectors of shape {vectors.shape}; "
                "want one row per hash"
            )
        if not len(hashes):
            return
        with self._lock:
            self._put(hashes, vectors)

    def _put(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        dim = self.dim
        if dim is not None and vectors.shape[1] != dim:
            raise ValueError(f"put: vectors have dim {vectors.shape[1]}, the cache holds {dim}")
        with self._conn:
            if dim is None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('dim', ?)",
                    (str(vectors.shape[1]),),
                )
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (hash, vector) VALUES (?, ?)",
                ((h, v.tobytes()) for h, v in zip(hashes, vectors, strict=True)),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM embeddings WHERE hash = ?", (key,)).fetchone()
        return row is not None

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"
