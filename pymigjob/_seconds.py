"""The one check of a timeout in seconds, shared by both implementations
(the C-backed side calls it only off its exact int/float fast path)."""

from __future__ import annotations

from numbers import Real


def seconds(value: object, what: str) -> float:
    """`value` as float seconds >= 0: any real number (numbers.Real: int,
    float, Fraction, an int or float subclass, ...) but a bool.  Refused:
    anything else (TypeError), NaN, negatives and what no float can hold
    (ValueError).  Infinity is accepted."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number of seconds or None, "
                        f"not {type(value).__name__}")
    if not value >= 0:  # also catches NaN
        raise ValueError(f"{what} must be >= 0 seconds, not {value!r}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"{what} {value!r} is too large") from None
    if not result >= 0:  # a Real whose float() disagrees with its comparisons
        raise ValueError(f"{what} must be >= 0 seconds, not {value!r}")
    return result
