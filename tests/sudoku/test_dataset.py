import json

import numpy as np
import pytest

import lohard.sudoku as S

ARRAYS = ("puzzles", "solutions", "orders", "labels", "counts", "guesses", "attempts")


def test_save_load_roundtrip(tmp_path):
    s = S.generate_puzzles(5, difficulty="easy", rng=0, jobs=1)
    f = s.save(tmp_path / "x.npz")
    t = S.load_puzzles(f)
    for a in ARRAYS:
        np.testing.assert_array_equal(getattr(s, a), getattr(t, a))
    assert t.meta["format"] == S.PUZZLES_FORMAT and t.meta["format_version"] == 1
    assert t.meta["config"]["difficulty"] == "easy" and "lohard_version" in t.meta
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="no metadata"):
        S.load_puzzles(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", meta_json=np.array(json.dumps(
        {"format": S.PUZZLES_FORMAT, "format_version": 99})))
    with pytest.raises(ValueError, match="format version 99"):
        S.load_puzzles(tmp_path / "b.npz")


def test_resumable_generation(tmp_path):
    cfg = S.GeneratorConfig(num=10, difficulty="easy", seed=4)
    out = tmp_path / "set.npz"
    assert S.generate_dataset(out, cfg, chunk_size=4, jobs=1, progress=False,
                              max_new_chunks=1) is None
    parts = tmp_path / "set.npz.parts"
    first = parts / "chunk_000000.npz"
    assert sorted(p.name for p in parts.iterdir()) == ["chunk_000000.npz"]
    stamp = first.stat().st_mtime_ns
    # a second interrupted run adds exactly one more chunk and leaves the first alone
    S.generate_dataset(out, cfg, chunk_size=4, jobs=1, progress=False, max_new_chunks=1)
    assert len(list(parts.iterdir())) == 2 and first.stat().st_mtime_ns == stamp
    full = S.generate_dataset(out, cfg, chunk_size=4, jobs=1, progress=False)
    assert out.exists() and not parts.exists() and len(full) == 10
    fresh = S.generate_puzzles(10, difficulty="easy", rng=4, jobs=1)
    for a in ARRAYS:
        np.testing.assert_array_equal(getattr(full, a), getattr(fresh, a))
    again = S.load_puzzles(out)
    assert again.meta["config"]["seed"] == 4 and again.meta["summary"]["num"] == 10
    # rerun is a no-op; another config is refused
    assert len(S.generate_dataset(out, cfg, chunk_size=4, progress=False)) == 10
    with pytest.raises(ValueError, match="different config"):
        S.generate_dataset(out, S.GeneratorConfig(num=10, seed=5), progress=False)


def test_chunk_from_other_config_refused(tmp_path):
    out = tmp_path / "s.npz"
    S.generate_dataset(out, S.GeneratorConfig(num=4, seed=1), chunk_size=2, jobs=1,
                       progress=False, max_new_chunks=1)
    with pytest.raises(ValueError, match="another config"):
        S.generate_dataset(out, S.GeneratorConfig(num=4, seed=2), chunk_size=2,
                           progress=False)


def test_config_validation():
    with pytest.raises(ValueError, match="difficulty"):
        S.GeneratorConfig(difficulty="medium")
    with pytest.raises(ValueError, match="box size"):
        S.GeneratorConfig(box=5)
    with pytest.raises(ValueError, match="min_clues"):
        S.GeneratorConfig(min_clues=82)
    with pytest.raises(ValueError, match="num"):
        S.GeneratorConfig(num=-1)


def test_generator_records_its_seed_and_checks_integers():
    ps = S.generate_puzzles(2, difficulty="any", rng=123, jobs=1)
    assert ps.meta["config"]["seed"] == 123 and ps.meta["seed"] == 123
    ps = S.generate_puzzles(2, difficulty="any", rng=np.random.default_rng(1), jobs=1)
    assert ps.meta["config"]["seed"] is None and ps.meta.get("seed") is None
    assert isinstance(ps.meta["root_key"], int)  # the Generator's stream is recorded by key
    for bad in (dict(num=True), dict(num=2.0), dict(min_clues=20.5), dict(max_attempts=2.5)):
        with pytest.raises(ValueError, match="must be an integer"):
            S.GeneratorConfig(**{"num": 2, **bad})


def test_dataset_progress_batches_do_not_change_the_puzzles(tmp_path, monkeypatch):
    from lohard.sudoku import _dataset

    cfg = S.GeneratorConfig(num=7, difficulty="any", box=3, seed=4)
    whole = S.generate_puzzles(7, difficulty="any", rng=4, jobs=1)
    monkeypatch.setitem(_dataset._PROGRESS_BATCH, 3, 2)  # chunks of 5 in batches of 2
    ps = S.generate_dataset(tmp_path / "d.npz", cfg, chunk_size=5, jobs=1, progress=False)
    assert (ps.puzzles == whole.puzzles).all() and (ps.orders == whole.orders).all()


def test_one_grid_as_a_2d_array_gets_a_hint():
    with pytest.raises(ValueError, match="reshape"):
        S.count_solutions(np.zeros((9, 9), np.int64))
