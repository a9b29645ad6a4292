"""The one shape of a refused request: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``,
where ``loc`` names the field (or the limit's flag is in ``msg``)."""

from __future__ import annotations

from fastapi import HTTPException


def problem(loc: list[object], msg: str, kind: str) -> dict[str, object]:
    """One entry of a refusal's ``detail`` list: where, what, which kind."""
    return {"loc": loc, "msg": msg, "type": kind}


def refused(
    status: int, loc: list[object], msg: str, kind: str, headers: dict[str, str] | None = None
) -> HTTPException:
    """An HTTP refusal with a single problem."""
    return HTTPException(status, [problem(loc, msg, kind)], headers=headers)


def too_long(loc: list[object], limit: int) -> dict[str, object]:
    """The problem of a text field (the last part of ``loc``) over ``--max-text``."""
    return problem(loc, f"{loc[-1]} longer than {limit:,} characters (--max-text)", "too_long")


__all__ = ["problem", "refused", "too_long"]
