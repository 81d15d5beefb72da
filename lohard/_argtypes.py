"""argparse types that check a number when it is parsed.

A bad value is refused by argparse itself, naming the option: ``lohard train-mdm: error:
argument --lr: must be a finite number > 0, got inf``, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import math


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = False):
    """A float type: finite, and within ``[low, high]`` (an end is open if asked)."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    want = "a finite number" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        ok = math.isfinite(x)
        if ok and low is not None:
            ok = x > low if low_open else x >= low
        if ok and high is not None:
            ok = x < high if high_open else x <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
        return x

    parse.__name__ = "real"
    return parse


def integer(low: int | None = None, high: int | None = None, *, also: tuple[int, ...] = ()):
    """An int type within ``[low, high]``; ``also`` lists extra accepted values (e.g. -1
    for "all cores")."""
    parts = []
    if low is not None:
        parts.append(f">= {low}")
    if high is not None:
        parts.append(f"<= {high}")
    want = "an integer" + (" " + " and ".join(parts) if parts else "")
    if also:
        want += " (or " + ", ".join(str(a) for a in also) + ")"

    def parse(text: str) -> int:
        try:
            x = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        if x in also:
            return x
        if (low is not None and x < low) or (high is not None and x > high):
            raise argparse.ArgumentTypeError(f"must be {want}, got {x}")
        return x

    parse.__name__ = "integer"
    return parse


#: Common cases.
SEED = integer(0)  # numpy seeds are non-negative
POSITIVE = integer(1)
COUNT = integer(0)
JOBS = integer(1, also=(-1,))  # workers; -1: all cores
PROBABILITY = real(0, 1)
POSITIVE_REAL = real(0, low_open=True)
NONNEG_REAL = real(0)
