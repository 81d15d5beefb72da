"""Zebra training, decoding, the tables run and the CLI (tiny sizes, seconds)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.cli import main  # noqa: E402
from lohard.zebra import Clue, Puzzle, ZebraGenConfig, generate_puzzles, solve  # noqa: E402


@pytest.fixture(scope="module")
def sets():
    return (generate_puzzles(ZebraGenConfig(num=40, m=3, n=3, seed=1)),
            generate_puzzles(ZebraGenConfig(num=10, m=3, n=3, seed=2)))


def _cfg(**kw):
    from lohard.mdm._zebra_train import ZebraTrainConfig

    base = dict(m=3, n=3, max_clues=9, model="tiny", steps=6, batch_size=8, warmup_steps=1,
                log_every=2, ckpt_every=3)
    return ZebraTrainConfig(**{**base, **kw})


def test_augmentation_keeps_puzzles_valid(sets):
    from lohard.mdm._zebra_train import augment_batch

    ps = sets[0]
    s, c, o = augment_batch(ps.solutions, ps.clues, ps.n_clues, ps.orders,
                            np.random.default_rng(0))
    changed = 0
    for i in range(len(ps)):
        k = int(ps.n_clues[i])
        p = Puzzle(3, 3, tuple(Clue.from_row(r) for r in c[i, :k]), s[i])
        sol = solve(p)
        assert sol.unique and np.array_equal(sol.grid, s[i])
        assert sorted(o[i].tolist()) == list(range(9))
        assert (c[i, k:] == -1).all()
        changed += not np.array_equal(s[i], ps.solutions[i])
    assert changed > len(ps) // 2


@pytest.mark.parametrize("kind,order", [("mdm", "solver"), ("arm", "solver"),
                                        ("arm", "row-major")])
def test_train_resume_is_exact_and_decodes(tmp_path, sets, kind, order):
    from lohard.mdm._zebra_decode import evaluate_zebra
    from lohard.mdm._zebra_train import load_zebra_model, train_zebra

    torch.set_num_threads(1)
    cfg = _cfg(kind=kind, arm_order=order)
    full = train_zebra(cfg, sets[0], tmp_path / "a", progress=False)
    train_zebra(cfg, sets[0], tmp_path / "b", stop_after=3, progress=False)
    resumed = train_zebra(cfg, sets[0], tmp_path / "b", resume=True, progress=False)
    assert full.finished and resumed.finished
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="resume"):
        train_zebra(cfg, sets[0], tmp_path / "a", progress=False)
    zm = load_zebra_model(tmp_path / "a")
    # the run record: CPU time only, train time summed over the resumed sessions
    s = zm.summary()
    assert s["gpu_seconds"] == 0.0 and s["finished"] and s["step"] == cfg.steps
    assert resumed.train_seconds > 0 and load_zebra_model(tmp_path / "b").step == cfg.steps
    res, decs = evaluate_zebra(zm, sets[1])
    names = ["arm"] if kind == "arm" else ["vanilla", "top-prob", "margin",
                                          "top-prob-nonoise", "margin-nonoise"]
    assert list(res) == names
    for name in names:
        r, d = res[name], decs[name]
        assert r["num"] == 10 and 0 <= r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
        # solved means the whole grid equals the solution
        flat = sets[1].solutions.reshape(10, -1)
        assert np.array_equal(d.solved, (d.grids == flat).all(axis=1) & d.well_formed)
        if kind == "mdm":
            assert (d.steps >= 0).all() and (np.sort(d.steps, axis=1) == np.arange(9)).all()


def test_model_of_another_size_is_refused(tmp_path, sets):
    from lohard.mdm._zebra_decode import evaluate_zebra
    from lohard.mdm._zebra_train import load_zebra_model, train_zebra

    train_zebra(_cfg(steps=1), sets[0], tmp_path / "m", progress=False)
    other = generate_puzzles(ZebraGenConfig(num=3, m=4, n=3, seed=0))
    zm = load_zebra_model(tmp_path / "m")
    with pytest.raises(ValueError, match=r"trained on 3 x 3 puzzles .* these are 4 x 3"):
        evaluate_zebra(zm, other)
    with pytest.raises(ValueError, match="the puzzles are 4 x 3"):
        train_zebra(_cfg(), other, tmp_path / "x", progress=False)
    other.save(tmp_path / "o.jsonl")
    assert main(["zebra", "eval", "--model", str(tmp_path / "m"), "--data",
                 str(tmp_path / "o.jsonl")]) == 2


def test_cli_generate_solve_and_errors(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert main(["zebra", "generate", "--num", "5", "--m", "3", "--n", "4", "--out", str(out),
                 "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num"] == 5 and summary["m"] == 3 and summary["n"] == 4
    assert main(["zebra", "solve", str(out), "--index", "2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["unique"] and rec["guesses"] == 0 and len(rec["steps"]) == 12
    assert main(["zebra", "solve", str(out), "--all"]) == 0
    assert "5 uniquely solvable, 0 needed a guess" in capsys.readouterr().out
    # bad input: one line, exit 2
    assert main(["zebra", "generate", "--num", "5", "--m", "7", "--out", str(out)]) == 2
    assert "--m" in capsys.readouterr().err
    out.write_text(out.read_text().replace('"order":[', '"order":[99,', 1))
    assert main(["zebra", "solve", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and len(err.strip().splitlines()) == 1
    assert main(["zebra", "solve", str(out), "--index", "99"]) == 2


def test_tiny_tables_run_writes_md_json_csv(tmp_path, capsys):
    stem = tmp_path / "zebra_table3_tiny"
    args = ["zebra", "tables", "--scale", "tiny", "--work-dir", str(tmp_path / "run"),
            "--out", str(stem)]
    assert main(args) == 0
    first = capsys.readouterr().out
    data = json.loads(stem.with_suffix(".json").read_text())
    keys = [r["key"] for r in data["rows"]]
    assert keys == ["arm-row-major", "arm-solver", "mdm/vanilla", "mdm/top-prob",
                    "mdm/margin", "mdm/top-prob-nonoise", "mdm/margin-nonoise"]
    assert all(r["num"] == 20 and r["accuracy"] is not None for r in data["rows"])
    paper = {r["key"]: r["paper"] for r in data["rows"]}
    assert paper["mdm/top-prob"] == 98.5 and paper["arm-solver"] == 91.17
    assert data["config"]["m"] == 3 and data["seed"] == 0 and data["lohard_version"]
    md = stem.with_suffix(".md").read_text()
    assert "3 x 3" in md and "98.50" in md and "95% CI" in md
    assert stem.with_suffix(".csv").read_text().startswith("# lohard zebra tables")
    png = tmp_path / "zebra_table3_tiny_learning.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(data["learning_curves"]) == {"mdm", "arm-solver", "arm-row-major"}
    # resumable: the second call reuses checkpoints and evaluations
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "cached" in second and "cached" not in first
