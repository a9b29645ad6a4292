"""A/B variants: each user sees one variant, chosen by a stable hash of their id.

``blake2b(salt + user) mod 10,000`` against the variants' cumulative shares: the same user gets
the same variant in every process, replica and restart with no state kept, and changing the salt
reshuffles everyone (a new experiment). Shares are in basis points so a 0.5% arm is exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from driftrec.errors import InputError

BUCKETS = 10_000


@dataclass(frozen=True)
class Variant:
    """A model directory served to ``share`` (0..1) of the users under ``name``."""

    name: str
    model_dir: Path
    share: float


def parse_variant(text: str) -> Variant:
    """``NAME=DIR:SHARE`` (as ``--variant`` takes it), e.g. ``b=runs/sasrec:0.5``."""
    name, sep, rest = text.partition("=")
    directory, colon, share = rest.rpartition(":")
    if not sep or not colon or not name.strip() or not directory:
        raise InputError(f"--variant {text!r}: give NAME=MODEL_DIR:SHARE, e.g. b=runs/sasrec:0.5")
    try:
        value = float(share)
    except ValueError:
        raise InputError(f"--variant {text!r}: the share {share!r} is not a number") from None
    if not 0 < value <= 1:
        raise InputError(f"--variant {text!r}: the share must be in (0, 1], not {value}")
    return Variant(name.strip(), Path(directory), value)


def check_variants(variants: Sequence[Variant]) -> None:
    """Distinct names and shares that add up to 1 (within rounding to basis points)."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise InputError(f"--variant: names must differ, got {', '.join(names)}")
    total = sum(round(v.share * BUCKETS) for v in variants)
    if total != BUCKETS:
        raise InputError(f"--variant: shares must add up to 1, they add up to {total / BUCKETS:g}")


def bucket(user: str, salt: str = "") -> int:
    """The user's bucket in [0, 10,000): stable across processes (not Python's ``hash``)."""
    digest = hashlib.blake2b(f"{salt}\x00{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def assign(user: str, variants: Sequence[Variant], salt: str = "") -> int:
    """The index of the variant ``user`` sees."""
    at, edge = bucket(user, salt), 0
    for n, v in enumerate(variants):
        edge += round(v.share * BUCKETS)
        if at < edge:
            return n
    return len(variants) - 1


__all__ = ["BUCKETS", "Variant", "assign", "bucket", "check_variants", "parse_variant"]
