"""A text file's lines, whatever it was saved as: compressed files open transparently and every
line is decoded on its own, so one line in another encoding costs that line, not the file.

Compression is recognised by the file's first bytes, not its name: gzip, bzip2 and xz are read
directly; a zip or zstd archive is refused with a message saying to unpack it.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from driftrec.errors import DataFormatError

# magic bytes -> (name, the module's open function)
_COMPRESSED: dict[bytes, tuple[str, Callable[..., BinaryIO]]] = {
    b"\x1f\x8b": ("gzip", gzip.open),
    b"BZh": ("bzip2", bz2.open),
    b"\xfd7zXZ\x00": ("xz", lzma.open),
}
_ARCHIVES = {b"PK\x03\x04": "a zip archive", b"\x28\xb5\x2f\xfd": "zstd-compressed"}
PARQUET_MAGIC = b"PAR1"
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")

# (line index -> (the line decoded with replacement characters, why it is not valid))
Invalid = dict[int, tuple[str, str]]


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(8)


def compression(path: str | Path) -> str | None:
    """ "gzip", "bzip2", "xz" or None, from the file's first bytes."""
    head = _magic(Path(path))
    return next((name for magic, (name, _) in _COMPRESSED.items() if head.startswith(magic)), None)


def is_parquet(path: str | Path) -> bool:
    """Whether the file is Parquet, by its suffix or its first bytes (whatever its name says)."""
    path = Path(path)
    return path.suffix.lower() == ".parquet" or _magic(path).startswith(PARQUET_MAGIC)


def _uncompressed_name(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in COMPRESSION_SUFFIXES else path


def content_suffix(path: str | Path) -> str:
    """The suffix that says what a file holds: "seq.txt.gz" -> ".txt"."""
    return _uncompressed_name(path).suffix.lower()


def content_stem(path: str | Path) -> str:
    """The file's name without its suffixes of content and compression: "seq.txt.gz" -> "seq"."""
    return _uncompressed_name(path).stem


def require_file(path: str | Path) -> Path:
    """``path`` as a Path; a `DataFormatError` when it is missing, or a directory, a device or a
    pipe rather than a regular file."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file")
    return path


def open_binary(path: str | Path) -> BinaryIO:
    """The file's bytes as a stream, decompressed when it is gzip, bzip2 or xz."""
    path = require_file(path)
    head = _magic(path)
    for magic, what in _ARCHIVES.items():
        if head.startswith(magic):
            raise DataFormatError(f"{path.name}: is {what}; unpack it and import the file inside")
    opener = next((o for m, (_, o) in _COMPRESSED.items() if head.startswith(m)), None)
    return opener(path, "rb") if opener else path.open("rb")


def read_bytes(path: str | Path) -> bytes:
    """The whole file, decompressed; a damaged compressed file is a one-line error."""
    try:
        with open_binary(path) as handle:
            return handle.read()
    except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        kind = compression(path) or "compressed"
        raise DataFormatError(f"{Path(path).name}: a damaged {kind} file ({exc})") from exc


def decode_lines(data: bytes, encoding: str, file: str) -> tuple[list[str | None], Invalid]:
    """Physical lines of ``data``; an undecodable line is None, with (text, why) in the dict.

    A UTF-8 byte-order mark and CRLF line ends are accepted; the final newline and blank lines
    at the very end are not lines.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError as exc:
        raise DataFormatError(f"{file}: unknown encoding {encoding!r}") from exc
    if codec.name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if utf16 and not codec.name.startswith("utf-16"):
        raise DataFormatError(
            f"{file}: is UTF-16 text (it starts with a byte-order mark); pass --encoding utf-16"
        )
    lines: list[str | None]
    invalid: Invalid = {}
    try:
        lines = list(data.decode(encoding).replace("\r\n", "\n").split("\n"))
    except UnicodeDecodeError:
        lines = []
        for index, raw in enumerate(data.split(b"\n")):
            try:
                lines.append(raw.decode(encoding).removesuffix("\r"))
            except UnicodeDecodeError as exc:
                lines.append(None)
                text = raw.decode(encoding, errors="replace").removesuffix("\r")
                invalid[index] = (text, f"not {encoding}: {exc.reason} at byte {exc.start}")
    if lines and lines[0] is not None:  # a byte-order mark left by an explicit utf-16-le/be
        lines[0] = lines[0].removeprefix("\ufeff")
    while lines and lines[-1] is not None and not lines[-1].strip():
        lines.pop()
    return lines, invalid


def read_lines(path: str | Path, encoding: str = "utf-8") -> tuple[list[str | None], Invalid]:
    """`decode_lines` of a whole (possibly compressed) file."""
    return decode_lines(read_bytes(path), encoding, Path(path).name)


def head_lines(path: str | Path, n: int) -> list[str]:
    """The first ``n`` lines, decompressed, decoded leniently (for guessing a file's format)."""
    try:
        with open_binary(path) as handle:
            raw = [handle.readline() for _ in range(n)]
    except (EOFError, OSError, lzma.LZMAError, zlib.error):
        return []
    text = b"".join(raw).decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]
