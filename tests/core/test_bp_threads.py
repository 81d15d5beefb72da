"""run_bp(threads=...): validation, the "auto" policy, and results that do not depend on it."""

import numba
import numpy as np
import pytest

from lohard.bp import _threads, run_bp
from lohard.bp._threads import ThreadPolicy
from lohard.csp import planted_instance
from lohard.predicates import Predicate


class FakeLoad:
    """Stands in for CpuLoad: other processes use ``value`` cores."""

    available = True

    def __init__(self, value=0.0):
        self.value = value

    def others(self, min_window, max_window=float("inf")):
        return self.value

    def recent(self, max_age):
        return self.value


@pytest.fixture
def two_cores(monkeypatch):
    """A 2-core machine with 2 Numba threads, whatever this one has (the policy only)."""
    monkeypatch.setattr(_threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)


def _drive(policy, seconds, iters):
    """Run ``iters`` iterations of the policy; ``seconds(it, threads)`` is each one's time."""
    used = []
    for it in range(iters):
        t = policy.next()
        policy.record(t, seconds(it, t))
        used.append(t)
    return np.array(used)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "two", True, None, float("nan"),
                                 numba.config.NUMBA_NUM_THREADS + 1])
def test_bad_threads_are_refused(bad):
    inst = planted_instance(30, Predicate.nae(3, 3), 5, rng=0)
    with pytest.raises(ValueError, match=r"threads must be 'auto' or an integer in \[1, "):
        run_bp(inst, threads=bad, warn=False, rng=0)


def test_threads_and_parallel_together_are_refused():
    inst = planted_instance(30, Predicate.nae(3, 3), 5, rng=0)
    with pytest.raises(ValueError, match="pass threads or parallel, not both"):
        run_bp(inst, threads=1, parallel=True, warn=False, rng=0)
    assert run_bp(inst, threads=1.0, max_iter=2, warn=False, rng=0).options["threads"] == 1


def test_auto_stays_serial_while_other_processes_hold_a_core(two_cores):
    p = ThreadPolicy("auto", 10**6, 8, load=FakeLoad(1.0))
    assert p.max_threads == 2
    used = _drive(p, lambda it, t: 0.01, 300)
    assert np.all(used == 1) and p.used == {1: 300}


def test_auto_takes_threads_that_pay_and_leaves_them_under_contention(two_cores):
    load = FakeLoad(0.0)
    p = ThreadPolicy("auto", 10**6, 8, load=load)

    def seconds(it, t):
        if it >= 50:
            load.value = 1.0  # from iteration 50 another process holds a core
        if t == 1:
            return 0.010
        return 0.006 if it < 40 else 0.012  # from iteration 40 the threads are slowed

    used = _drive(p, seconds, 200)
    # 3 timed serial iterations, a trial (warm-up + 2 timed), then threaded ...
    assert list(used[:3]) == [1, 1, 1] and np.all(used[3:40] == 2)
    # ... until two iterations in a row take > 1.5x the trial's median
    assert list(used[40:43]) == [2, 2, 1]
    # then serial: first the back-off (16 iterations), then the other process
    assert np.all(used[42:] == 1)
    assert p.used == {1: 3 + 158, 2: 39}


def test_auto_gives_up_on_threads_that_do_not_pay_and_backs_off(two_cores):
    p = ThreadPolicy("auto", 10**6, 8, load=FakeLoad(0.0))
    used = _drive(p, lambda it, t: 0.010 if t == 1 else 0.030, 400)
    starts = [i for i in range(1, len(used)) if used[i] == 2 and used[i - 1] == 1]
    # each trial is cut after its first timed iteration (3x slower than serial)
    assert all(list(used[s:s + 3]) == [2, 2, 1] for s in starts)
    gaps = np.diff(starts)
    assert len(starts) >= 3 and np.all(gaps[1:] > 1.8 * gaps[:-1])
    assert (used == 2).sum() <= 2 * len(starts) < 20


def test_auto_is_serial_on_small_graphs_and_in_single_thread_workers(two_cores, monkeypatch):
    assert ThreadPolicy("auto", _threads.MIN_PARALLEL_EDGES, 8).max_threads == 1
    assert ThreadPolicy("auto", 10**6, 1).max_threads == 1  # one chunk: nothing to share
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)  # e.g. a sweep worker
    p = ThreadPolicy("auto", 10**6, 8, load=FakeLoad(0.0))
    assert p.max_threads == 1
    assert np.all(_drive(p, lambda it, t: 0.01, 50) == 1)
    assert ThreadPolicy(3, 10, 1).max_threads == 3  # an explicit count is used as is


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs 2 Numba threads")
def test_results_do_not_depend_on_the_threads(monkeypatch):
    # "auto" here tries the threads after 3 serial iterations (graph size limit lifted,
    # no other load reported) and keeps or drops them on its timings; either way the
    # messages must be bitwise those of one thread.
    monkeypatch.setattr(_threads, "MIN_PARALLEL_EDGES", 0)
    monkeypatch.setattr(_threads, "shared_load", lambda: FakeLoad(0.0))
    monkeypatch.setattr(_threads, "usable_cores", lambda: 2)
    inst = planted_instance(5000, Predicate.nae(3, 3), 64, rng=1)  # 2 clause chunks
    runs = {th: run_bp(inst, schedule="parallel", damping=0.5, max_iter=12, tol=1e-300,
                       warn=False, rng=2, threads=th) for th in (1, 2, "auto")}
    assert runs[1].options["threads_used"] == {"1": 12}
    assert runs[2].options["threads_used"] == {"2": 12}
    assert "2" in runs["auto"].options["threads_used"]
    for th in (2, "auto"):
        np.testing.assert_array_equal(runs[th].nu, runs[1].nu)
        np.testing.assert_array_equal(runs[th].beliefs, runs[1].beliefs)
        np.testing.assert_array_equal(runs[th].history, runs[1].history)


def _spin(seconds):
    import time

    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        pass


def test_cpu_load_sees_another_process_and_not_this_one():
    import multiprocessing as mp
    import time

    load = _threads.CpuLoad()
    if not load.available:
        pytest.skip("no /proc/stat")
    child = mp.get_context("spawn").Process(target=_spin, args=(3.0,))
    child.start()
    try:
        time.sleep(1.0)  # the child has started spinning
        load.others(0.0)
        _spin(0.4)  # this process busy too: that is its own time, not "others"
        assert load.others(0.1) >= 0.6  # the child: one core (minus 0.4 for ticks)
        assert load.recent(10.0) is not None
    finally:
        child.join()
