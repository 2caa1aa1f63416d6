"""Argument checks shared by every method: one message format, one place.

Each check returns the value converted to a plain Python type and raises
``ValueError`` naming the argument, the rule and the offending value; they
check exactly the condition the message states. Bools are never integers here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = ["check_choice", "check_int", "check_number", "check_range_pair"]


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: float | None = None) -> int:
    """``value`` as an ``int``; ``ValueError`` unless it is an integer in ``[minimum, maximum]``.

    The message reads "a positive integer" for ``minimum=1``, "an integer in
    [lo, hi]" with both bounds, "an integer >= lo" / "<= hi" with one.
    """
    if minimum is not None and maximum is not None:
        rule = f"an integer in [{minimum}, {maximum}]"
    elif minimum == 1:
        rule = "a positive integer"
    elif minimum is not None:
        rule = f"an integer >= {minimum}"
    elif maximum is not None:
        rule = f"an integer <= {maximum}"
    else:
        rule = "an integer"
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {rule}, got {value!r}") from None
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return int(v)


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the stated bounds; ``ValueError`` otherwise."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    rule = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {rule}, got {value!r}") from None
    low = minimum is not None and (v <= minimum if exclusive_minimum else v < minimum)
    if not math.isfinite(v) or low or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` unchanged if it is one of ``choices``; ``ValueError`` listing them otherwise."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_range_pair(name: str, value: Any, *, minimum: int = 2) -> tuple[int, int]:
    """A pair ``(lo, hi)`` of integers with ``minimum <= lo <= hi`` (e.g. a searched cluster-count range)."""
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}") from None
    lo, hi = check_int(f"{name}[0]", lo), check_int(f"{name}[1]", hi)
    if lo < minimum or hi < lo:
        raise ValueError(f"{name} must satisfy {minimum} <= min <= max, got {value!r}")
    return lo, hi
