"""run_sweep: a cell's cached result belongs to (cell, index, root seed)."""

import json

import numpy as np
import pytest

from lohard.sweep import _legacy_cell_key, _worker_threads, cell_key, run_sweep


def _draw(cell, seed):
    return {"x": float(np.random.default_rng(seed).random()), "d": cell["d"]}


def _xs(records):
    return [r["result"]["x"] for r in records]


def _run(cells, out_dir=None):
    return run_sweep(_draw, cells, root_seed=7, out_dir=out_dir, backend="sequential",
                     progress=False)


def test_resume_after_reordering_matches_a_fresh_run(tmp_path):
    _run([{"d": 1.0}, {"d": 2.0}], tmp_path)
    # d = 2 moves from index 1 to index 0: its seed changes, so must its result.
    resumed = _run([{"d": 2.0}, {"d": 3.0}], tmp_path)
    fresh = _run([{"d": 2.0}, {"d": 3.0}])
    assert _xs(resumed) == _xs(fresh)
    assert [r["index"] for r in resumed] == [0, 1]


def test_identical_cells_at_two_positions_get_two_files(tmp_path):
    recs = _run([{"d": 1.0}, {"d": 1.0}], tmp_path)
    assert recs[0]["result"]["x"] != recs[1]["result"]["x"]
    assert len(list(tmp_path.glob("*.json"))) == 2
    again = _run([{"d": 1.0}, {"d": 1.0}], tmp_path)
    assert _xs(again) == _xs(recs)


def test_cache_is_used_and_keyed_by_index(tmp_path):
    cells = [{"d": 1.0}, {"d": 2.0}]
    first = _run(cells, tmp_path)
    for i, cell in enumerate(cells):
        path = tmp_path / f"{cell_key(cell, 7, i)}.json"
        rec = json.loads(path.read_text())
        rec["result"]["x"] = -1.0  # a marker: a resumed run must load, not recompute
        path.write_text(json.dumps(rec))
    assert _xs(_run(cells, tmp_path)) == [-1.0, -1.0]
    assert cell_key(cells[0], 7, 0) != cell_key(cells[0], 7, 1)
    assert _xs(first) == _xs(_run(cells))


def test_legacy_files_are_reused_only_at_their_own_index(tmp_path):
    cells = [{"d": 1.0}, {"d": 2.0}]
    recs = _run(cells, tmp_path)
    # Rename the files to the old (index-free) key, as caches written before the fix.
    for i, cell in enumerate(cells):
        (tmp_path / f"{cell_key(cell, 7, i)}.json").rename(
            tmp_path / f"{_legacy_cell_key(cell, 7)}.json")
        rec = json.loads((tmp_path / f"{_legacy_cell_key(cell, 7)}.json").read_text())
        rec["result"]["x"] = -1.0 - i
        (tmp_path / f"{_legacy_cell_key(cell, 7)}.json").write_text(json.dumps(rec))
    assert _xs(_run(cells, tmp_path)) == [-1.0, -2.0]  # same positions: reused
    # d = 2 at index 0 now: its legacy file was computed at index 1, so it is not reused.
    moved = _run([{"d": 2.0}], tmp_path)
    assert _xs(moved) == _xs(_run([{"d": 2.0}])) == _xs(recs[:1])


def _bp_threads_cell():
    """A cell reporting its numba threads and the most a BP run would use (by value, for
    cloudpickle: worker processes cannot import a test module)."""

    def cell(cell, seed):
        import numba

        from lohard.bp._threads import ThreadPolicy

        return {"numba": numba.get_num_threads(),
                "bp": ThreadPolicy("auto", 10**7, 16).max_threads}

    return cell


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_bp_in_sweep_workers_uses_one_thread_each(backend):
    # one worker per core (n_jobs=-1): joblib caps loky workers through
    # NUMBA_NUM_THREADS, run_sweep caps threading workers itself
    recs = run_sweep(_bp_threads_cell(), [{"i": i} for i in range(4)], root_seed=0,
                     n_jobs=-1, backend=backend, progress=False)
    assert {r["result"]["numba"] for r in recs} == {1}
    assert {r["result"]["bp"] for r in recs} == {1}


def test_worker_thread_cap_is_cores_over_workers(monkeypatch):
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda: 16)
    assert [_worker_threads(j) for j in (1, 2, 3, 16, 64, -1, -2)] == [16, 8, 5, 1, 1, 1, 1]


_CALLS: list = []


def _draw_logged(cell, seed):
    _CALLS.append(cell["d"])
    return _draw(cell, seed)


def test_cost_hands_out_expensive_cells_first_and_changes_no_result():
    cells = [{"d": 1.0}, {"d": 5.0}, {"d": 3.0}, {"d": 5.0}]
    _CALLS.clear()
    plain = run_sweep(_draw_logged, cells, root_seed=7, backend="sequential", progress=False)
    assert _CALLS == [1.0, 5.0, 3.0, 5.0]
    _CALLS.clear()
    lpt = run_sweep(_draw_logged, cells, root_seed=7, backend="sequential", progress=False,
                    cost=lambda c: c["d"])
    assert _CALLS == [5.0, 5.0, 3.0, 1.0]  # ties (the two d = 5) in cell order
    assert [r["index"] for r in lpt] == [0, 1, 2, 3]
    assert _xs(lpt) == _xs(plain)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_cost_must_be_finite_and_nonnegative(bad):
    with pytest.raises(ValueError, match="finite number >= 0"):
        run_sweep(_draw, [{"d": 1.0}], root_seed=7, backend="sequential", progress=False,
                  cost=lambda c: bad)
