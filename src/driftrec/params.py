"""The values a parameter may take, declared next to the parameter itself, checked in one place.

Every model class maps each constructor parameter to a `Rule` in ``param_rules`` (a subclass
extends its parent's dict) and lists conditions between parameters in ``param_constraints``.
`check_params` enforces both, so a value out of range is refused in one line naming the model,
the parameter, what it must be and the value given, before any data is read or any BLAS call
turns it into a model of zeros. Import options (k-core limits) use the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from driftrec.errors import InputError

FLOAT32_MAX = 3.4028234663852886e38
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}


def duration_seconds(text: str, option: str = "--window") -> int:
    """``7d``, ``12h``, ``2w``, ``30m``, ``90s`` as seconds; ``option`` names the setting in
    the error."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text.lower())
    if match is None or int(match.group(1)) == 0:
        raise InputError(
            f"{option} {text!r}: give a positive length with a unit, e.g. 7d, 12h, 2w, 30m"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Rule:
    """What one value must be: the words for the error message and the test behind them."""

    description: str  # completes "must be ...", e.g. "an integer >= 1"
    allows: Callable[[Any], bool]

    def check(self, value: Any, subject: str) -> None:
        """Raise an `InputError` "<subject> must be <description>, got <value>" unless allowed."""
        if not self.allows(value):
            raise InputError(f"{subject} must be {self.description}, got {value!r}")


@dataclass(frozen=True)
class Constraint:
    """A condition several parameters must meet together (e.g. hidden divisible by heads)."""

    names: tuple[str, ...]
    description: str
    allows: Callable[[Mapping[str, Any]], bool]


def _bounds(
    low: float | None, high: float | None, low_open: bool, high_open: bool
) -> tuple[str, Callable[[Any], bool]]:
    """The words and the test of the interval between ``low`` and ``high`` (None: unbounded)."""

    def inside(v: Any) -> bool:
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    if low is None and high is None:
        return "", inside
    if high is None:
        return f" {'>' if low_open else '>='} {low}", inside
    if low is None:
        return f" {'<' if high_open else '<='} {high}", inside
    return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}", inside


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer (not a bool) in [low, high]; either bound may be None."""
    words, inside = _bounds(low, high, False, False)
    return Rule(
        f"an integer{words}",
        lambda v: isinstance(v, Integral) and not isinstance(v, bool) and inside(v),
    )


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Rule:
    """A real number (an int will do) between ``low`` and ``high``, closed by default, and
    within float32's range (the tensors it ends up in would overflow to inf)."""
    words, inside = _bounds(low, high, low_open, high_open)
    return Rule(
        f"a number{words}" if words else "a finite number",
        # abs(v) <= FLOAT32_MAX first: it is False for NaN and inf, and unlike math.isfinite it
        # does not overflow on an integer of 400 digits
        lambda v: (
            isinstance(v, Real) and not isinstance(v, bool) and abs(v) <= FLOAT32_MAX and inside(v)
        ),
    )


def choice(*values: str) -> Rule:
    """One of a few fixed strings."""
    return Rule(f"one of {', '.join(map(repr, values))}", lambda v: v in values)


def optional(rule: Rule) -> Rule:
    """``rule``, or None (a parameter whose None means "off" or "the default")."""
    return Rule(f"None or {rule.description}", lambda v: v is None or rule.allows(v))


def auto_or(rule: Rule) -> Rule:
    """``rule``, or "auto" (a setting the model chooses from the data it is trained on)."""
    return Rule(f"'auto' or {rule.description}", lambda v: v == "auto" or rule.allows(v))


def divisible(name: str, by: str) -> Constraint:
    """``name`` a multiple of ``by`` (a hidden size split evenly over attention heads)."""
    return Constraint(
        (name, by), f"{name} must be divisible by {by}", lambda p: p[name] % p[by] == 0
    )


FLAG = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a non-empty string", lambda v: isinstance(v, str) and v != "")
SEED = integer(0, 2**64 - 1)  # what numpy and torch both accept as a seed
# counts; below 2^31 (a C int, what BLAS and torch index with)
POSITIVE_INT = Rule("an integer >= 1 (and < 2^31)", integer(1, 2**31 - 1).allows)
SIZE = integer(1, 1 << 16)  # a vector or sequence size: factors, hidden units, window lengths
BATCH = integer(1, 1 << 20)  # examples or negatives per step, neighbours kept per item
LAYERS = integer(1, 64)
THREADS = integer(1, 4096)
POSITIVE = number(0, low_open=True)  # rates, half-lives
NON_NEGATIVE = number(0)  # regularisation, weights
PROBABILITY = number(0, 1)
FLOAT32 = number()  # any finite number float32 can hold


def check_params(
    model: str,
    params: Mapping[str, Any],
    rules: Mapping[str, Rule],
    constraints: Sequence[Constraint] = (),
) -> None:
    """Raise an `InputError` for the first parameter of ``model`` its rule refuses, then for the
    first constraint the parameters break. A parameter without a rule is not checked (a model
    written outside driftrec may declare none; every built-in one has a rule, tested)."""
    for name, value in params.items():
        if name in rules:
            rules[name].check(value, f"parameter {name!r} of model {model!r}")
    for constraint in constraints:
        if not constraint.allows(params):
            given = ", ".join(f"{n}={params[n]!r}" for n in constraint.names)
            raise InputError(
                f"parameters of model {model!r}: {constraint.description}, got {given}"
            )


__all__ = [
    "BATCH",
    "FLAG",
    "FLOAT32",
    "LAYERS",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INT",
    "PROBABILITY",
    "SEED",
    "SIZE",
    "TEXT",
    "THREADS",
    "Constraint",
    "Rule",
    "check_params",
    "choice",
    "divisible",
    "integer",
    "number",
    "optional",
]
