"""Sweeps on a real cluster: Dask distributed (and Ray, where installed) against loky.

A ``distributed.LocalCluster`` of 2 worker processes with 1 thread each, bound to
127.0.0.1, stands in for a cluster. "Byte for byte" means: the fig4 CSV and PNG
files are identical, and so is the fig4 JSON once the fields that say how and when
it ran are left out (creation time, wall and cell seconds, backend, scheduler, jobs);
cached cell records agree on every result except the cells' own timings.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lohard import sweep
from lohard.cli import main
from lohard.sweep import run_sweep

FIG4 = ["fig4", "-n", "1500", "--degrees", "40,55,70", "--seeds", "2", "--quiet"]
N_CELLS = 6  # 3 degrees x 2 seeds
# Fields of the fig4 JSON that record how and when it ran, not what it computed.
RUN_FIELDS = ("wall_seconds", "cells_seconds", "meta")
HOW_FIELDS = ("backend", "scheduler", "n_jobs")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="needs lohard[dask]")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as lc:
        with distributed.Client(lc.scheduler_address, set_as_default=False) as client:
            yield lc.scheduler_address, client


@pytest.fixture(scope="module")
def loky_fig4(tmp_path_factory):
    out = tmp_path_factory.mktemp("loky")
    assert main([*FIG4, "--jobs", "2", "--out", str(out)]) == 0
    return out


def _outputs(out: Path) -> dict:
    """What a fig4 run computed, by file: CSV and PNG bytes, the JSON less RUN_FIELDS."""
    (stem,) = {p.stem for p in out.glob("fig4_overlap*.csv")}
    summary = json.loads((out / f"{stem}.json").read_text())
    for key in RUN_FIELDS:
        summary.pop(key)
    for key in HOW_FIELDS:
        summary["config"].pop(key)
    return {"csv": (out / f"{stem}.csv").read_bytes(), "png": (out / f"{stem}.png").read_bytes(),
            "json": summary}


def _cell_results(out: Path) -> dict:
    """Cached cell results by index, without the cells' own wall times."""
    recs = [json.loads(p.read_text()) for p in out.glob(".cache/*/*.json")]
    return {r["index"]: {k: v for k, v in r["result"].items() if not k.startswith("seconds")}
            for r in recs}


def test_dask_fig4_cli_matches_loky_byte_for_byte_and_resumes_on_loky(cluster, loky_fig4,
                                                                      tmp_path):
    address, _ = cluster
    assert main([*FIG4, "--backend", "dask", "--scheduler", address, "--out",
                 str(tmp_path)]) == 0
    assert _outputs(tmp_path) == _outputs(loky_fig4)
    results = _cell_results(tmp_path)
    assert len(results) == N_CELLS and results == _cell_results(loky_fig4)
    # A resumed run on another backend reuses every cell (no file rewritten) and writes
    # the same outputs.
    cache = {p: p.read_bytes() for p in tmp_path.glob(".cache/*/*.json")}
    assert main([*FIG4, "--backend", "sequential", "--out", str(tmp_path)]) == 0
    assert {p: p.read_bytes() for p in tmp_path.glob(".cache/*/*.json")} == cache
    assert _outputs(tmp_path) == _outputs(loky_fig4)


def test_dask_thresholds_sweep_matches_loky(cluster, tmp_path):
    from dataclasses import asdict

    import distributed

    from lohard.cavity import locate_spinodal
    from lohard.predicates import predicate_by_name

    address, _ = cluster
    kw = dict(population=600, sweeps=40, repeats=2, tol=0.5, rng=1)
    pred = predicate_by_name("not-equal", m=4)
    ref = locate_spinodal(pred, 4.0, 14.0, n_jobs=2, backend="loky", **kw)
    # backend="dask" without an address uses the current default client.
    with distributed.Client(address):
        got = locate_spinodal(pred, 4.0, 14.0, backend="dask", cells_dir=str(tmp_path), **kw)
    assert json.dumps(asdict(got)) == json.dumps(asdict(ref))
    assert len(list(tmp_path.glob("*.json"))) == 4  # both ends and two bisections, cached


def _cells_for_threads():
    """Cell functions defined in a function, so that cloudpickle ships them by value
    (worker processes cannot import a test module)."""

    def threads(cell, seed):
        import numba

        return {"threads": numba.get_num_threads(), "pid": os.getpid()}

    return threads


def test_dask_workers_run_one_numba_thread_each(cluster):
    import numba

    address, _ = cluster
    cells = [{"i": i} for i in range(4)]
    recs = run_sweep(_cells_for_threads(), cells, root_seed=0, backend="dask",
                     scheduler=address, progress=False)
    assert {r["result"]["threads"] for r in recs} == {1}
    assert os.getpid() not in {r["result"]["pid"] for r in recs}  # ran on the workers
    if numba.config.NUMBA_NUM_THREADS >= 2:  # the setting is what decides, not a default
        recs = run_sweep(_cells_for_threads(), cells, root_seed=0, backend="dask",
                         scheduler=address, threads_per_worker=2, progress=False)
        assert {r["result"]["threads"] for r in recs} == {2}
    # In this process (sequential) the count is restored after each cell.
    before = numba.get_num_threads()
    recs = run_sweep(_cells_for_threads(), cells, root_seed=0, backend="sequential",
                     threads_per_worker=1, progress=False)
    assert {r["result"]["threads"] for r in recs} == {1}
    assert numba.get_num_threads() == before


def test_dask_fig4_survives_a_killed_worker(cluster, loky_fig4, tmp_path):
    address, client = cluster
    pids = client.run(os.getpid)  # worker address -> pid
    seen = {}

    def kill_first_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
            if busy:
                seen["done_at_kill"] = len(list(tmp_path.glob(".cache/*/*.json")))
                os.kill(pids[busy[0]], signal.SIGKILL)
                seen["pid"] = pids[busy[0]]
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_busy_worker)
    killer.start()
    try:
        assert main([*FIG4, "--backend", "dask", "--scheduler", address, "--out",
                     str(tmp_path)]) == 0
    finally:
        killer.join()
    assert "pid" in seen and seen["done_at_kill"] < N_CELLS  # killed while cells were left
    assert seen["pid"] not in client.run(os.getpid).values()  # that process is gone
    assert _outputs(tmp_path) == _outputs(loky_fig4)
    assert len(_cell_results(tmp_path)) == N_CELLS
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


CLIENT_SCRIPT = '''
import os, sys, time
from pathlib import Path
import numpy as np
from lohard.sweep import run_sweep

def cell(c, seed):
    time.sleep(c["sleep"])
    # one mark per finished computation, named by the cell
    Path(c["marks"], f"{c['i']}-{os.getpid()}-{time.time_ns()}").touch()
    return {"x": float(np.random.default_rng(seed).random())}

def cells(marks):
    return [{"i": i, "marks": marks, "sleep": 0.3} for i in range(12)]

if __name__ == "__main__":
    marks, cache, address = sys.argv[1:4]
    run_sweep(cell, cells(marks), root_seed=3, out_dir=cache, backend="dask",
              scheduler=address, progress=False)
'''


def test_killed_dask_client_resumes_with_only_the_missing_cells(cluster, tmp_path):
    address, client = cluster
    script, marks, cache = tmp_path / "client.py", tmp_path / "marks", tmp_path / "cache"
    script.write_text(CLIENT_SCRIPT)
    marks.mkdir()
    args = [sys.executable, str(script), str(marks), str(cache), address]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 60
    while len(list(cache.glob("*.json"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the client finished before it could be killed"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    # Let the cluster drop the dead client's tasks and finish the ones already running.
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        time.sleep(0.1)
    time.sleep(1.0)
    done = {p: p.read_bytes() for p in cache.glob("*.json")}
    assert 3 <= len(done) < 12
    before = len(list(marks.iterdir()))
    subprocess.run(args, check=True, timeout=120)
    recomputed = len(list(marks.iterdir())) - before
    assert recomputed == 12 - len(done)
    assert all(p.read_bytes() == b for p, b in done.items())  # finished cells not rewritten
    # The same numbers as an undisturbed run in this process.
    ns = {"__name__": "client_script"}
    exec(CLIENT_SCRIPT, ns)
    fresh = run_sweep(ns["cell"], ns["cells"](str(marks)), root_seed=3, backend="sequential",
                      progress=False)
    resumed = run_sweep(ns["cell"], ns["cells"](str(marks)), root_seed=3, out_dir=cache,
                        backend="sequential", progress=False)
    assert [r["result"] for r in resumed] == [r["result"] for r in fresh]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_dask_and_ray_errors_are_one_line(monkeypatch, capsys, tmp_path):
    base = [*FIG4, "--out", str(tmp_path)]
    err = _one_line_error(capsys, [*base, "--scheduler", "tcp://127.0.0.1:8786"])
    assert "--scheduler" in err and "'loky'" in err and "--backend dask" in err
    for backend, module in (("dask", "distributed"), ("ray", "ray")):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # as if the extra were not installed
            err = _one_line_error(capsys, [*base, "--backend", backend])
        assert f'pip install "lohard[{backend}]"' in err and f'.[{backend}]"' in err
    assert not list(tmp_path.iterdir())  # nothing computed or written


def test_unreachable_dask_scheduler_fails_in_seconds(monkeypatch, capsys, tmp_path):
    pytest.importorskip("distributed", reason="needs lohard[dask]")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    err = _one_line_error(capsys, [*FIG4, "--out", str(tmp_path), "--backend", "dask",
                                   "--scheduler", address])
    assert address in err and "within 1 s" in err
    assert time.monotonic() - t0 < 30


def test_ray_fig4_matches_loky_byte_for_byte(loky_fig4, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'); "
                                            "lohard's test extras leave it out for its size")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main([*FIG4, "--backend", "ray", "--out", str(tmp_path)]) == 0
        threads = run_sweep(_cells_for_threads(), [{"i": 0}, {"i": 1}], root_seed=0,
                            backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert _outputs(tmp_path) == _outputs(loky_fig4)
    assert _cell_results(tmp_path) == _cell_results(loky_fig4)
    assert {r["result"]["threads"] for r in threads} == {1}
    assert np.all([r["result"]["pid"] != os.getpid() for r in threads])
