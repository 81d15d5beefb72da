"""Resumable parameter sweeps on all cores or a cluster (joblib, Dask distributed, Ray).

Each cell of a sweep is a pure function of (cell config, seed). The seed of cell
``i`` is ``SeedSequence(root_seed).spawn(len(cells))[i]``, so any cell can be
re-run alone. Workers only compute: each finished cell streams back to the
process that called :func:`run_sweep` (the client), which writes its record
atomically into its own cache as it arrives. Workers never need the client's
file system, and a sweep that is interrupted (Ctrl-C, a killed client, a lost
worker or scheduler) resumes, on any backend, with only the missing cells.

A cell's result is a function of (cell, index, root seed), so its file name is
too (:func:`cell_key`): reordering the cells, or inserting and removing some,
never makes a resumed sweep reuse a result computed at another position's seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lohard._util import atomic_write_json, extra_hint, provenance, require_int, to_jsonable

SWEEP_BACKENDS = ("loky", "threading", "multiprocessing", "sequential", "dask", "ray")
#: Backends that run cells on a cluster, reached at a ``scheduler`` address.
CLUSTER_BACKENDS = ("dask", "ray")
#: Seconds to wait for a cluster's scheduler: enough for one on another machine,
#: short enough that a mistyped or dead address fails in seconds, not minutes.
CONNECT_TIMEOUT = 10.0


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


def _worker_threads(n_jobs: int) -> int:
    """joblib's thread cap for ``n_jobs`` workers: cores // workers, at least 1."""
    import joblib

    cores = joblib.cpu_count()
    workers = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    return max(1, cores // min(workers, cores))


# -- what a worker runs -----------------------------------------------------------------
def _compute_cell(func, cell, root_seed, index, threads):
    """``(index, record)`` of one cell, computed with at most ``threads`` numba threads.

    Runs on the worker and returns the record to the client; nothing is written
    here. The numba thread count is restored afterwards, so a cell run in the
    caller's own process (sequential backend) leaves it as it was.
    """
    seed = cell_seed(root_seed, index)
    old = None
    if threads is not None:
        import numba

        old = numba.get_num_threads()
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        t0 = time.perf_counter()
        result = func(cell, seed)
        seconds = time.perf_counter() - t0
    finally:
        if old is not None:
            numba.set_num_threads(old)
    if not isinstance(result, dict):
        raise TypeError(f"sweep cell functions must return a dict, got {type(result)!r}")
    return index, {
        "cell": cell,
        "index": index,
        "result": result,
        "seconds": seconds,
        "meta": provenance(seed={"root_seed": root_seed, "spawn_key": [index]}),
    }


# -- backends: each yields (index, record) as cells finish, in any order -----------------
def _check_backend(backend: str, scheduler: str | None) -> None:
    if backend not in SWEEP_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(SWEEP_BACKENDS)}")
    if scheduler is not None and backend not in CLUSTER_BACKENDS:
        raise ValueError(f"a scheduler address (--scheduler {scheduler}) only applies to the "
                         f"cluster backends dask and ray, not {backend!r}; add --backend dask "
                         "or --backend ray")


def _joblib_results(jobs, backend: str, n_jobs: int) -> Iterator[tuple[int, dict]]:
    import joblib

    kw = {} if backend == "sequential" else {"n_jobs": n_jobs}
    with joblib.parallel_config(backend=backend, **kw):
        par = joblib.Parallel(return_as="generator_unordered")
        yield from par(joblib.delayed(_compute_cell)(*job) for job in jobs)


def _dask_client(scheduler: str | None, n_jobs: int):
    """``(client, owned)``: a client of ``scheduler``, else the current default client,
    else one of a new local cluster; ``owned`` when this sweep must close it."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(f"backend 'dask' needs dask.distributed, which is not installed; "
                          f"{extra_hint('dask')}") from err
    if scheduler is None:
        try:
            return distributed.default_client(), False
        except ValueError:  # no client yet: a cluster on this machine, one thread per worker
            workers = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
            return distributed.Client(n_workers=workers, threads_per_worker=1,
                                      dashboard_address=None, set_as_default=False), True
    _probe_dask_scheduler(scheduler)
    return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False), True


def _probe_dask_scheduler(address: str) -> None:
    """Ask ``address`` who it is within :data:`CONNECT_TIMEOUT` s (OSError naming it if not
    a dask scheduler).

    ``Client(address, timeout=...)`` bounds the TCP connection but not the handshake
    after it: pointed at another kind of server (the dashboard's HTTP port, say) it
    waits for minutes. The probe runs in its own thread and event loop, so it works
    under a caller's running loop (Jupyter) too.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.core import rpc

    async def identity():
        async with rpc(address) as scheduler:
            return await scheduler.identity()

    def ask():
        return asyncio.run(asyncio.wait_for(identity(), CONNECT_TIMEOUT))

    hint = "is `dask scheduler` running there, and is the address tcp://HOST:PORT right?"
    with ThreadPoolExecutor(1) as pool:
        try:
            ident = pool.submit(ask).result()
        except (asyncio.TimeoutError, TimeoutError) as err:
            raise OSError(f"no dask scheduler answered at {address} within "
                          f"{CONNECT_TIMEOUT:g} s; {hint}") from err
        except Exception as err:  # noqa: BLE001 -- any failure here means "not reachable"
            raise OSError(f"cannot reach the dask scheduler at {address} "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                          f"); {hint}") from err
    if not isinstance(ident, dict) or ident.get("type") != "Scheduler":
        raise OSError(f"the server at {address} is not a dask scheduler; {hint}")


def _dask_results(jobs, scheduler: str | None, n_jobs: int) -> Iterator[tuple[int, dict]]:
    import logging
    from concurrent.futures import CancelledError

    from distributed import as_completed

    client, owned = _dask_client(scheduler, n_jobs)
    futures = []
    # distributed logs a lost scheduler with a traceback of its own; the one-line error
    # below says what happened and what to do, so its loggers stay quiet meanwhile.
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client",
                                            "distributed.core", "tornado")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        # pure=False: a cell is never shared with another sweep's task of the same inputs
        futures = [client.submit(_compute_cell, *job, pure=False) for job in jobs]
        for fut in as_completed(futures, loop=client.loop):
            try:
                yield fut.result()  # re-raises the cell's exception on the client
            except CancelledError as err:  # the scheduler died or dropped this client
                where = f" at {scheduler}" if scheduler else ""
                raise ConnectionError(f"lost the connection to the dask scheduler{where}; the "
                                      "finished cells are cached: start the scheduler and "
                                      "workers again and rerun to resume") from err
            fut.release()
    finally:
        try:
            client.cancel([f for f in futures if not f.done()])
            if owned:
                cluster = client.cluster if scheduler is None else None
                client.close()
                if cluster is not None:
                    cluster.close()
        finally:
            for lg, level in zip(quiet, levels, strict=True):
                lg.setLevel(level)


def _check_reachable(address: str, what: str) -> None:
    """Connect to ``HOST:PORT`` within :data:`CONNECT_TIMEOUT` s (OSError naming it if not)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ValueError(f"the {what} address must be HOST:PORT (or ray://HOST:PORT), "
                         f"got {address!r}")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise OSError(f"cannot reach the {what} at {address} within {CONNECT_TIMEOUT:g} s "
                      f"({err.strerror or err})") from err


def _ray_results(jobs, scheduler: str | None, n_jobs: int,
                 threads: int | None) -> Iterator[tuple[int, dict]]:
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"backend 'ray' needs ray, which is not installed; "
                          f"{extra_hint('ray')}") from err
    owned = not ray.is_initialized()
    if owned:
        if scheduler is None:
            ray.init(num_cpus=n_jobs if n_jobs > 0 else None, include_dashboard=False)
        else:
            if scheduler != "auto":
                _check_reachable(scheduler, "Ray cluster")
            ray.init(address=scheduler)
    # A task reserves the CPUs its numba threads use, so Ray never runs more threads than cores.
    remote = ray.remote(num_cpus=threads or 1)(_compute_cell)
    pending = []
    try:
        pending = [remote.remote(*job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref)
        if owned:
            ray.shutdown()


def run_sweep(
    func: Callable[[dict, np.random.SeedSequence], dict],
    cells: Sequence[dict],
    *,
    root_seed: int,
    out_dir: str | Path | None = None,
    n_jobs: int = -1,
    backend: str = "loky",
    scheduler: str | None = None,
    threads_per_worker: int | None = None,
    progress: bool = True,
    desc: str = "sweep",
    cost: Callable[[dict], float] | None = None,
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
        The client's cache: each cell's record is written here (``<cell_key>.json``,
        keyed by cell, index and root seed) by this process, as the cell finishes;
        cells whose file exists are loaded instead of recomputed. None keeps results
        in memory only.
    n_jobs : int
        joblib worker count (-1: all cores). On a cluster the workers decide.
    backend : {"loky", "threading", "multiprocessing", "sequential", "dask", "ray"}
        Where the cells run. "dask" submits them to the Dask distributed scheduler at
        ``scheduler`` (without one: the current default ``distributed.Client``, else a
        new cluster on this machine); "ray" to the Ray cluster at ``scheduler``
        (without one: the running Ray instance, else a new local one).
    scheduler : str, optional
        Cluster address, e.g. ``tcp://10.0.0.5:8786`` (dask) or ``ray://10.0.0.5:10001``
        (ray); an unreachable address fails within :data:`CONNECT_TIMEOUT` seconds.
    threads_per_worker : int, optional
        numba threads of each running cell. None: 1 on dask and ray (start one worker
        thread per core, e.g. ``dask worker --nthreads 8``, so the cores are used by
        cells rather than oversubscribed); cores / n_jobs on loky (joblib's own cap),
        multiprocessing and threading (numba's thread count is per calling thread, so
        each threading worker gets its own); unchanged on sequential.
    progress : bool
        Show a tqdm progress bar over finished cells.
    cost : callable, optional
        ``cost(cell) -> float``, a cell's expected run time in any unit. Cells are then
        handed to the workers most expensive first (longest-processing-time order), so
        that a long cell does not start last and run alone at the end; ties keep cell
        order. Without it, cells go in cell order. Results are the same either way.

    Returns
    -------
    list of dict
        One record per cell, in cell order: ``{"cell", "index", "result", "seconds", "meta"}``.

    Notes
    -----
    Results do not depend on the backend, the worker count or the order cells finish
    in: each is a function of its cell, index and root seed only. A sweep whose cells
    are all cached does not contact the cluster.
    """
    from tqdm.auto import tqdm

    _check_backend(backend, scheduler)
    if threads_per_worker is not None:
        threads_per_worker = require_int(threads_per_worker, "threads_per_worker", minimum=1)
    elif backend in CLUSTER_BACKENDS:
        threads_per_worker = 1
    elif backend in ("threading", "multiprocessing"):
        # joblib caps the threads of loky workers (NUMBA_NUM_THREADS = cores // n_jobs)
        # but not these: without a cap every cell would start one thread per core.
        threads_per_worker = _worker_threads(n_jobs)
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
    if cost is not None:
        costs = {i: float(cost(cells[i])) for i in todo}
        bad = [i for i, c in costs.items() if not np.isfinite(c) or c < 0]
        if bad:
            raise ValueError(f"cost(cell) must be a finite number >= 0; cell {bad[0]} gave "
                             f"{costs[bad[0]]}")
        todo.sort(key=lambda i: -costs[i])  # stable: ties stay in cell order
    if not todo:
        return records  # type: ignore[return-value]
    jobs = [(func, cells[i], root_seed, i, threads_per_worker) for i in todo]
    if backend == "dask":
        results = _dask_results(jobs, scheduler, n_jobs)
    elif backend == "ray":
        results = _ray_results(jobs, scheduler, n_jobs, threads_per_worker)
    else:
        results = _joblib_results(jobs, backend, n_jobs)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc, disable=not progress,
               unit="cell")
    try:
        for i, rec in results:
            rec = json.loads(json.dumps(to_jsonable(rec)))
            if out_dir is not None:
                atomic_write_json(Path(out_dir) / f"{cell_key(cells[i], root_seed, i)}.json", rec)
            records[i] = rec
            bar.update(1)
    finally:
        bar.close()
        results.close()  # a generator: stops the backend and closes what it opened
    return records  # type: ignore[return-value]
