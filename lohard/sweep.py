"""Resumable parameter sweeps on all cores or a cluster, through joblib backends.

Each cell of a sweep is a pure function of (cell config, seed). The seed of cell
``i`` is ``SeedSequence(root_seed).spawn(len(cells))[i]``, so any cell can be
re-run alone. Every finished cell writes its own JSON file atomically; a sweep
that is interrupted (Ctrl-C, a killed job) resumes with only the missing cells.

A cell's result is a function of (cell, index, root seed), so its file name is
too (:func:`cell_key`): reordering the cells, or inserting and removing some,
never makes a resumed sweep reuse a result computed at another position's seed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from lohard._util import atomic_write_json, provenance, to_jsonable

SWEEP_BACKENDS = ("loky", "threading", "multiprocessing", "sequential", "dask", "ray")


def cell_seed(root_seed: int, index: int) -> np.random.SeedSequence:
    """Seed of cell ``index``: identical to ``SeedSequence(root_seed).spawn(...)[index]``."""
    return np.random.SeedSequence(root_seed, spawn_key=(int(index),))


def cell_key(cell: dict, root_seed: int, index: int) -> str:
    """Stable file name of cell ``index``: a hash of its JSON config, index and root seed.

    The index is part of the key because it is part of the seed
    (:func:`cell_seed`): the same cell at two positions is two computations.
    """
    blob = json.dumps({"cell": to_jsonable(cell), "index": int(index),
                       "root_seed": int(root_seed)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _legacy_cell_key(cell: dict, root_seed: int) -> str:
    """File name used before the index was part of the key (read only, to reuse old caches)."""
    blob = json.dumps({"cell": to_jsonable(cell), "root_seed": int(root_seed)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _load_record(path: Path, cell: dict, root_seed: int, index: int) -> dict | None:
    """A cached record if ``path`` holds this cell computed at this index and root seed."""
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # atomic writes make this unlikely; recompute a damaged file
    seed = rec.get("meta", {}).get("seed", {}) if isinstance(rec, dict) else {}
    same = (isinstance(rec, dict) and rec.get("index") == index
            and rec.get("cell") == json.loads(json.dumps(to_jsonable(cell)))
            and seed.get("root_seed", root_seed) == root_seed
            and seed.get("spawn_key", [index]) == [index])
    return rec if same else None


def cached_record(out_dir: str | Path, cell: dict, root_seed: int, index: int) -> dict | None:
    """The finished record of cell ``index`` in ``out_dir``, or None if it must be computed.

    Files written before the index entered :func:`cell_key` are still used when
    the record they hold was computed at this same index and root seed.
    """
    out_dir = Path(out_dir)
    rec = _load_record(out_dir / f"{cell_key(cell, root_seed, index)}.json", cell, root_seed,
                       index)
    if rec is None:
        rec = _load_record(out_dir / f"{_legacy_cell_key(cell, root_seed)}.json", cell,
                           root_seed, index)
    return rec


def _run_cell(func, cell, root_seed, index, out_dir):
    seed = cell_seed(root_seed, index)
    t0 = time.perf_counter()
    result = func(cell, seed)
    if not isinstance(result, dict):
        raise TypeError(f"sweep cell functions must return a dict, got {type(result)!r}")
    record = {
        "cell": cell,
        "index": index,
        "result": result,
        "seconds": time.perf_counter() - t0,
        "meta": provenance(seed={"root_seed": root_seed, "spawn_key": [index]}),
    }
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / f"{cell_key(cell, root_seed, index)}.json", record)
    return record


def _backend_context(backend: str, scheduler: str | None, n_jobs: int):
    import joblib

    if backend not in SWEEP_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(SWEEP_BACKENDS)}")
    if backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError as err:
            raise ImportError("backend 'dask' needs `pip install lohard[dask]`") from err
        client = Client(scheduler) if scheduler else Client()
        return client, joblib.parallel_config(backend="dask", n_jobs=n_jobs)
    if backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError as err:
            raise ImportError("backend 'ray' needs `pip install lohard[ray]`") from err
        if not ray.is_initialized():
            ray.init(address=scheduler)
        register_ray()
        return None, joblib.parallel_config(backend="ray", n_jobs=n_jobs)
    if scheduler is not None:
        raise ValueError(f"a scheduler address only applies to the dask or ray backends, "
                         f"not {backend!r}")
    if backend == "sequential":
        return None, joblib.parallel_config(backend="sequential")
    return None, joblib.parallel_config(backend=backend, n_jobs=n_jobs)


def run_sweep(
    func: Callable[[dict, np.random.SeedSequence], dict],
    cells: Sequence[dict],
    *,
    root_seed: int,
    out_dir: str | Path | None = None,
    n_jobs: int = -1,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "sweep",
) -> list[dict[str, Any]]:
    """Run ``func(cell, seed)`` for every cell, in parallel, resuming finished cells.

    Parameters
    ----------
    func : callable
        Top-level (picklable) function ``(cell: dict, seed: SeedSequence) -> dict``.
    cells : sequence of dict
        JSON-able cell configurations, in a fixed order (the order sets the seeds).
    root_seed : int
        Root of the seed tree.
    out_dir : path, optional
        Where each cell's record is written (``<cell_key>.json``, keyed by cell,
        index and root seed); cells whose file exists are loaded instead of
        recomputed. None keeps results in memory only.
    n_jobs : int
        joblib worker count (-1: all cores).
    backend : {"loky", "threading", "multiprocessing", "sequential", "dask", "ray"}
        joblib backend; "dask" and "ray" run the same code on a cluster at ``scheduler``.
    scheduler : str, optional
        Cluster address for dask/ray.
    progress : bool
        Show a tqdm progress bar over finished cells.

    Returns
    -------
    list of dict
        One record per cell, in cell order: ``{"cell", "index", "result", "seconds", "meta"}``.
    """
    import joblib
    from tqdm.auto import tqdm

    root_seed = int(root_seed)
    cells = list(cells)
    records: list[dict | None] = [None] * len(cells)
    todo = []
    for i, cell in enumerate(cells):
        rec = cached_record(out_dir, cell, root_seed, i) if out_dir else None
        if rec is not None:
            records[i] = rec
        else:
            todo.append(i)
    client, ctx = _backend_context(backend, scheduler, n_jobs)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc, disable=not progress,
               unit="cell")
    try:
        with ctx if ctx is not None else nullcontext():
            par = joblib.Parallel(return_as="generator_unordered")
            jobs = (joblib.delayed(_run_with_index)(func, cells[i], root_seed, i, out_dir)
                    for i in todo)
            for i, rec in par(jobs):
                records[i] = json.loads(json.dumps(to_jsonable(rec)))
                bar.update(1)
    finally:
        bar.close()
        if client is not None:
            client.close()
    return records  # type: ignore[return-value]


def _run_with_index(func, cell, root_seed, index, out_dir):
    return index, _run_cell(func, cell, root_seed, index, out_dir)
