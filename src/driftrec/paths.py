"""Output paths: every directory driftrec writes (a dataset, a model) is made the same way."""

from __future__ import annotations

from pathlib import Path

from driftrec.errors import InputError


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
