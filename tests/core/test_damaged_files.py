"""Damaged input files end in one clear error line naming the file, never a traceback."""

import numpy as np
import pytest

from lohard.cli import main

#: What each damaged file is, and the words its error must hold.
DAMAGED = {
    "empty.npz": (b"", "is empty"),
    "garbage.npz": (b"not an archive at all", "not a lohard"),
    "truncated.npz": (None, "truncated or corrupt"),  # the head of a real .npz
}


@pytest.fixture
def damaged(tmp_path):
    from lohard.lo import nae_sat

    good = tmp_path / "good.npz"
    nae_sat(5, 6, rng=0).save(good)
    files = {}
    for name, (data, words) in DAMAGED.items():
        path = tmp_path / name
        path.write_bytes(good.read_bytes()[:200] if data is None else data)
        files[name] = (path, words)
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    files["array.npz"] = (tmp_path / "array.npz", "bare .npy array")
    return files


def _commands(path, tmp_path):
    yield ["posterior", str(path), "--method", "exact"]
    yield ["sudoku", "rate", "--file", str(path)]
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    yield ["train-mdm", "--dist", str(path), "--out", str(tmp_path / "run"), "--steps", "1",
           "--device", "cpu"]


def test_damaged_npz_files_are_named_not_tracebacks(damaged, tmp_path, capsys):
    for path, words in damaged.values():
        for cmd in _commands(path, tmp_path):
            assert main(cmd) == 2, cmd
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "Traceback" not in err, err
            assert str(path) in err and words in err, (cmd, err)


def test_damaged_checkpoints_are_named(damaged, tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "run").mkdir()
    for path, _ in damaged.values():
        for cmd in (["eval-mdm", str(path), "--device", "cpu"],
                    ["sudoku", "eval", str(path), "--device", "cpu"]):
            assert main(cmd) == 2, cmd
            err = capsys.readouterr().err
            assert "Traceback" not in err and str(path) in err, err
            assert "not a readable lohard" in err or "is empty" in err, err


def test_damaged_pilearner_checkpoint_is_named(damaged, tmp_path):
    pytest.importorskip("torch")
    from lohard.lo import nae_sat
    from lohard.mdm._pilearner import PiTrainConfig, pilearner_config, train_pilearner

    dist = nae_sat(5, 6, rng=0)
    for path, _ in damaged.values():
        with pytest.raises(ValueError, match="not a readable lohard pi-learner checkpoint|"
                                             "is empty|not a pi-learner checkpoint") as err:
            train_pilearner(dist, "natural", pilearner_config("small", dist),
                            PiTrainConfig(steps=1), checkpoint=path)
        assert str(path) in str(err.value)


def test_library_loaders_raise_data_error(damaged):
    from lohard import DataError
    from lohard.lo import load_distribution
    from lohard.sudoku import load_puzzles

    for path, words in damaged.values():
        for load in (load_distribution, load_puzzles):
            with pytest.raises(DataError, match=words) as err:
                load(path)
            assert str(path) in str(err.value) and isinstance(err.value, ValueError)
    torch = pytest.importorskip("torch")  # noqa: F841
    from lohard.mdm._train import read_state

    for path, _ in damaged.values():
        with pytest.raises(DataError):
            read_state(path)
