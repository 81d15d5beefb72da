"""Shared helpers: the randomness contract, provenance metadata and atomic file writes."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

RNGLike = np.random.Generator | int | np.random.SeedSequence | None


def as_generator(rng: RNGLike) -> np.random.Generator:
    """Normalise the ``rng`` argument of a stochastic function to a Generator.

    Parameters
    ----------
    rng : numpy.random.Generator, int, SeedSequence or None
        A Generator is used as is (its state advances); an int or SeedSequence
        seeds a fresh PCG64; None draws fresh OS entropy.
    """
    if isinstance(rng, bool):
        raise TypeError("rng must be a numpy Generator, an int seed, a SeedSequence or None")
    if isinstance(rng, np.random.Generator | np.random.SeedSequence | int | np.integer) or (
        rng is None
    ):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy Generator, an int seed, a SeedSequence or None, got {type(rng)!r}"
    )


def require_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """``value`` as an int, if it is a whole number (>= ``minimum`` when given).

    Integer-valued floats (``3.0``) are accepted; ``2.7``, NaN, booleans and
    non-numbers raise ValueError naming ``name`` instead of being truncated.
    """
    bound = "" if minimum is None else f" >= {minimum}"
    ok = False
    if isinstance(value, bool | np.bool_):
        ok = False
    elif isinstance(value, int | np.integer):
        ok = True
    elif isinstance(value, float | np.floating):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok:
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be an integer{bound}, got {out}")
    return out


def integer_array(values: Any, name: str) -> np.ndarray:
    """``values`` as an int64 array, refusing non-integer entries instead of truncating them.

    Integer dtypes pass; float arrays pass only when every entry is a finite
    whole number; anything else (2.7, NaN, booleans, strings) raises ValueError.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if not bad.any():
            return arr.astype(np.int64)
        raise ValueError(f"{name} must hold integers, got {float(arr[bad].reshape(-1)[0])} "
                         f"among its entries")
    raise ValueError(f"{name} must hold integers, got an array of dtype {arr.dtype}")


@contextmanager
def heartbeat(label: str, *, every: float = 5.0, enabled: bool = True):
    """Print ``<label>: still running (N s)`` on stderr every ``every`` seconds while the
    block runs: progress for long library calls that have no natural progress bar.

    The lines come from a daemon thread, so a call that holds the GIL for long (a Numba
    kernel) delays them; calls that return to Python now and then do not.
    """
    if not enabled:
        yield
        return
    import sys
    import time

    stop = threading.Event()
    t0 = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            print(f"{label}: still running ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def say_needs_torch(verb: str) -> int:
    """Tell the user that ``lohard <verb>`` needs the torch extra; returns exit status 2."""
    import sys

    print(f"lohard {verb}: error: this command needs PyTorch; {extra_hint('torch')}",
          file=sys.stderr)
    return 2


def register_needs_torch(sub, names, prefix: str = "") -> None:
    """Placeholder subcommands ``names`` of the torch extra on an argparse subparsers
    object: without torch they say so (``lohard <prefix><name>``) instead of 'invalid
    choice'. ``_needs_torch`` lets them accept any arguments."""
    for name in names:
        p = sub.add_parser(name, help="(needs the torch extra)", add_help=False)
        p.set_defaults(func=lambda args, verb=prefix + name: say_needs_torch(verb),
                       _needs_torch=True)


def extra_hint(extra: str) -> str:
    """How to install an optional extra, from PyPI and from a source checkout."""
    return (f'install it with `pip install "lohard[{extra}]"`, or `pip install -e ".[{extra}]"` '
            "from a source checkout")


def package_version() -> str:
    """The installed lohard version; from a source tree never installed (run with
    ``PYTHONPATH=.``), the version in its ``pyproject.toml`` marked ``+src``, else
    ``0+unknown``.

    Read from the package metadata here, not from ``lohard.__version__``, so that the
    helpers every layer uses do not import the package root.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lohard")
    except PackageNotFoundError:
        pass
    import re

    try:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    except OSError:
        return "0+unknown"
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return f"{m.group(1)}+src" if m else "0+unknown"


def provenance(config: dict[str, Any] | None = None, seed: Any = None) -> dict[str, Any]:
    """Metadata every output file carries: config, seed, package and library versions."""
    import numba
    import scipy

    meta: dict[str, Any] = {
        "lohard_version": package_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    if config is not None:
        meta["config"] = to_jsonable(config)
    if seed is not None:
        meta["seed"] = to_jsonable(seed)
    return meta


def provenance_comment(what: str, meta: dict[str, Any]) -> str:
    """First line of a CSV output: ``# <what>; lohard <version>; seed <seed>; config <json>``.

    ``meta`` is a :func:`provenance` dict; readers skip lines starting with ``#``
    (``pandas.read_csv(..., comment="#")``, ``numpy.loadtxt``).
    """
    seed = json.dumps(to_jsonable(meta.get("seed")), sort_keys=True)
    config = json.dumps(to_jsonable(meta.get("config")), sort_keys=True)
    return (f"# {what}; lohard {meta.get('lohard_version')}; created {meta.get('created')}; "
            f"seed {seed}; config {config}\n")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, dataclasses and infinities to JSON-ready values.

    Floats: NaN becomes null, +-inf the strings ``"inf"``/``"-inf"``. Complex
    numbers (Python or numpy) become ``{"re": real, "im": imag}`` with both
    parts converted as floats.
    """
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        x = float(obj)
        if np.isnan(x):
            return None
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, complex | np.complexfloating):
        z = complex(obj)
        return {"re": to_jsonable(z.real), "im": to_jsonable(z.imag)}
    if isinstance(obj, Path):
        return str(obj)
    return obj


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting
    and restoring it (``os.umask``), under a lock so that concurrent calls from
    this module never see the temporary value.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def atomic_write(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` then rename over ``path``.

    A run interrupted mid-write leaves either the old file or none, never a torn one.
    The file gets the mode an ordinary ``open(path, "w")`` would give it,
    ``0o666 & ~umask`` (the temporary file starts private, mode 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, _w)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


class DataError(ValueError):
    """A damaged, foreign or incompatible input file: missing, empty, truncated or
    corrupt, not a lohard file, the wrong kind, or from another format version. The
    message names the file and says which. A ValueError, so ``except ValueError`` (and
    the CLI's one error path) catch it too."""


def read_npz(path: str | os.PathLike, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a lohard ``.npz`` file: its JSON metadata (``meta_json``) and its arrays.

    Every way a file can be unreadable becomes a :class:`DataError` that names the file and
    says what is wrong: missing, empty, not an ``.npz`` archive, truncated or corrupt,
    holding pickled objects, or without lohard metadata. ``what`` names the expected
    kind in the message (e.g. ``"L&O"``, ``"Sudoku"``). The caller checks the format.
    """
    import zipfile
    import zlib

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty, not a lohard {what} file")
    try:
        # Our own handle, so that a file numpy fails to parse is closed all the same.
        with open(p, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                raise DataError(f"{p} is a bare .npy array, not a lohard {what} file (.npz)")
            with loaded as f:
                arrays = {key: f[key] for key in f.files}
    except zipfile.BadZipFile as err:
        raise DataError(f"{p} is truncated or corrupt, not a readable lohard {what} file "
                         f"({err})") from err
    except (EOFError, zlib.error, OSError) as err:
        raise DataError(f"{p} is truncated or corrupt, not a readable lohard {what} file "
                         f"({type(err).__name__}: {err})") from err
    except ValueError as err:
        if str(err).startswith(str(p)):
            raise
        raise DataError(f"{p} is not a lohard {what} file (numpy cannot read it as an "
                         f".npz archive without pickled objects)") from err
    if "meta_json" not in arrays:
        raise DataError(f"{p} is not a lohard {what} file (no metadata)")
    try:
        meta = json.loads(str(arrays.pop("meta_json")))
    except ValueError as err:
        raise DataError(f"{p} has unreadable lohard metadata ({err})") from err
    if not isinstance(meta, dict):
        raise DataError(f"{p} has unreadable lohard metadata (not a JSON object)")
    return meta, arrays
