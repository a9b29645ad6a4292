"""driftrec's own files: every directory it writes (a dataset, a model) is made the same way,
and every JSON file it reads back fails the same way, naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from driftrec.errors import DataFormatError, InputError


def output_directory(path: str | Path) -> Path:
    """Create directory ``path`` (and its parents) to write into; a one-line `InputError` when a
    regular file stands where a directory is needed, instead of an OS traceback."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise InputError(f"{part}: exists and is not a directory; choose another output")
            break
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from a file driftrec wrote (a manifest, a config); a `DataFormatError` naming
    the file and the position when it is not valid JSON or not an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON (not UTF-8 text: {err.reason})") from None
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: must hold a JSON object, not {type(value).__name__}")
    return value
