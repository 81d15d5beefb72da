"""Size guards: refuse an array or a computation too large to be meant, before it starts.

A library call that allocates or computes something whose size grows fast with its
inputs (a table of m^k entries, all N!/(N-k)! ordered k-subsets, an n x L array of
tokens, a dense eigenproblem of size (m-1)^2) estimates that size first and raises
ValueError above a limit, unless the caller passes ``allow_large=True`` (the CLI's
``--allow-large``). The message names the size in the math's words, the estimate
and the limit.
"""

from __future__ import annotations

#: The largest single array a guarded call allocates unless ``allow_large=True``:
#: 2 GiB. Requests above it were typos (an extra zero on --num, the default P =
#: N!/(N-k)! at large N) far more often than intent, and ended minutes later in a
#: MemoryError or in swapping.
MAX_BYTES = 2 * 2**30

#: The most operations a guarded dense computation (an eigen-solve, passes over a
#: table) runs unless ``allow_large=True``: 1e9, about a second of compiled work on one
#: core. The Kesten-Stigum eigenproblem of 100-colouring, about 1e12, ran for minutes.
MAX_OPS = 10**9

_HINT = "pass allow_large=True (--allow-large on the command line) to {action} anyway"


def sci(x: int | float) -> str:
    """``x`` in 3 significant digits (``2.18e+09``); exact below 10^6."""
    if isinstance(x, int) and abs(x) < 10**6:
        return str(x)
    try:
        return f"{float(x):.3g}"
    except OverflowError:  # an int beyond float range
        return f"~10^{len(str(abs(int(x)))) - 1}"


def fmt_bytes(n: int | float) -> str:
    """``n`` bytes in binary units: ``512 B``, ``1.5 MiB``, ``2 GiB``, ``7.28 TiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    x, i = float(n), 0
    while x >= 1024 and i < len(units) - 1:
        x, i = x / 1024, i + 1
    return f"{x:.3g} {units[i]}"


def check_bytes(what: str, n_bytes: int, *, advice: str, action: str = "allocate it",
                allow_large: bool = False, limit: int | None = None) -> None:
    """Raise ValueError if an array of ``n_bytes`` bytes is above the limit.

    Parameters
    ----------
    what : str
        The array and its size in the math's words, e.g. ``"the predicate table has
        m^k = 6^12 = 2.18e+09 float64 entries"``; the byte count follows it.
    n_bytes : int
        The estimate.
    advice : str
        How to ask for less, e.g. ``"lower k or m"``.
    action : str
        What ``allow_large=True`` does, e.g. ``"build it"``.
    allow_large : bool
        Skip the check.
    limit : int, optional
        The limit in bytes (default :data:`MAX_BYTES`, read at call time).
    """
    limit = MAX_BYTES if limit is None else limit
    if allow_large or n_bytes <= limit:
        return
    raise ValueError(f"{what} ({fmt_bytes(n_bytes)}), above the limit of {fmt_bytes(limit)} "
                     f"for one array; {advice}, or {_HINT.format(action=action)}")


def check_ops(what: str, n_ops: int, *, advice: str, action: str = "compute it",
              allow_large: bool = False, limit: int | None = None) -> None:
    """Raise ValueError if a computation of about ``n_ops`` operations is above the limit.

    ``what`` names the computation and the formula of its cost (e.g. ``"the
    eigenproblem of size (m-1)^2 = 9801 takes about (m-1)^6"``); `` = <estimate>
    operations`` follows it. The other arguments are those of :func:`check_bytes`;
    ``limit`` defaults to :data:`MAX_OPS`, read at call time.
    """
    limit = MAX_OPS if limit is None else limit
    if allow_large or n_ops <= limit:
        return
    raise ValueError(f"{what} = {sci(n_ops)} operations, above the limit of {sci(limit)} "
                     f"(about a second of work); {advice}, or {_HINT.format(action=action)}")
