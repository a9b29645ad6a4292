"""driftrec's own files: every directory it writes (a dataset, a model) is made the same way,
and every JSON file it reads back fails the same way, naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from driftrec.errors import DataFormatError, InputError


def default_cache_dir() -> Path:
    """Where driftrec keeps what it can recompute (text embeddings, index graphs):
    ``$DRIFTREC_CACHE`` if set, else ``~/.cache/driftrec``."""
    env = os.environ.get("DRIFTREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "driftrec"


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent; an InputError when that is not a directory
    (a regular file standing where a directory is needed)."""
    for part in (path, *path.parents):
        if part.exists():
            if part != path and not part.is_dir():
                raise InputError(f"{part}: exists and is not a directory; choose another output")
            return part
    return Path(".")


def _is_ours(path: Path, mark: tuple[str, str]) -> bool:
    """Whether directory ``path`` holds an earlier driftrec output of a kind: its marker file
    ``mark[0]``, a JSON object with the key ``mark[1]`` (a folder of some other tool's config.json
    or manifest.json is not one)."""
    marker, key = mark
    try:
        return key in read_json(path / marker)
    except (DataFormatError, OSError):
        return False


def check_output_directory(path: str | Path, mark: tuple[str, str]) -> Path:
    """Refuse, before any work is done, an output directory that cannot or must not be written:
    a file in the way, or a directory holding other things than an earlier output of this kind
    (``mark``: its marker file and a key of it, e.g. a dataset's manifest.json and its
    format_version), which writing would mix into or overwrite."""
    path = Path(path)
    existing = _first_existing(path)
    if existing == path:
        if not path.is_dir():
            raise InputError(f"{path}: exists and is not a directory; choose another output")
        if any(path.iterdir()) and not _is_ours(path, mark):
            raise InputError(
                f"{path}: not empty and not an earlier output of this kind (no driftrec"
                f" {mark[0]}); choose a new or empty directory"
            )
    return path


def output_directory(path: str | Path, mark: tuple[str, str]) -> Path:
    """`check_output_directory`, then create it (and its parents) to write into."""
    path = check_output_directory(path, mark)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_output_file(path: str | Path) -> Path:
    """Refuse, before any work is done, a file path that cannot be written: a directory, or a
    parent that is a regular file."""
    path = Path(path)
    if _first_existing(path) == path and path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name")
    return path


def read_json_value(path: str | Path) -> Any:
    """Any JSON value from a file; a `DataFormatError` naming the file and the position when it
    is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON (not UTF-8 text: {err.reason})") from None


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from a file driftrec wrote (a manifest, a config); a `DataFormatError` naming
    the file and the position when it is not valid JSON or not an object."""
    value = read_json_value(path)
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: must hold a JSON object, not {type(value).__name__}")
    return value
