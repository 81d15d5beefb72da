"""The decoders side-by-side experiment end to end on tiny models: tables, plot, resume."""

import json

import pytest

torch = pytest.importorskip("torch")

from lohard.experiments import decoders as D  # noqa: E402

TINY = dict(num_samples=6, sample_batch=6, n_test=3, n_test_hard=2, bp_limit=1,
            presets=((5, 9),), pareto_presets=((5, 9),), device="cpu", quiet=True,
            table1_overrides=dict(model="tiny", steps=8, eval_points=1, eval_size=16,
                                  fig2_preset=None),
            sudoku_overrides=dict(n_train=200, n_test=3, n_test_hard=2, steps=4,
                                  mdm_model="tiny", compile=False, threads=1, jobs=1,
                                  warmup_steps=1))


def _cfg(tmp_path, **kw):
    return D.DecodersConfig(**{**TINY, "table1_work_dir": str(tmp_path / "t1"),
                               "sudoku_work_dir": str(tmp_path / "sd"),
                               "out_dir": str(tmp_path / "fig"), **kw})


def test_tables_and_plot_end_to_end_then_resume_from_cache(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    t1 = D.run_table1_decoders(cfg)
    D.write_table1(cfg, t1)
    sd = D.run_sudoku_decoders(cfg)
    D.write_sudoku(cfg, sd)
    png = D.plot_pareto(cfg, preset="nae-sat-5-9-t")
    assert png.stat().st_size > 10_000
    doc = json.loads((tmp_path / "fig" / "decoders_table1_cpu.json").read_text())
    rows = doc["presets"]["nae-sat-5-9-t"]["decoders"]
    assert set(rows) == set(D.table1_decoders(15))
    assert doc["lohard_version"] and doc["config"]["seed"] == 0
    for name, r in rows.items():
        assert 0 <= r["accuracy"] <= 100 and r["n_sequences"] == 6, name
        assert 1 <= r["model_calls_mean"] <= 15 * 2, name
    assert rows["threshold-0.5"]["model_calls_mean"] <= rows["threshold-0.99"][
        "model_calls_mean"]
    assert rows["left-to-right"]["model_calls_mean"] == 15  # L = 15, one token per call
    assert rows["semi-ar"]["spec"]["block_size"] == 5  # the divisor of 15 nearest 10
    sdoc = json.loads((tmp_path / "fig" / "decoders_sudoku_9x9.json").read_text())
    easy = sdoc["test_sets"]["easy"]["decoders"]
    assert set(easy) == set(D.sudoku_decoders())
    assert easy["bp-order+bp-values"]["num"] == 1 and easy["margin"]["num"] == 3
    assert easy["margin-x8"]["model_calls_mean"] < easy["margin"]["model_calls_mean"]
    md = (tmp_path / "fig" / "decoders_sudoku_9x9.md").read_text()
    assert "| decoder |" in md and "Ranking on easy" in md
    csv = (tmp_path / "fig" / "decoders_table1_cpu.csv").read_text().splitlines()
    assert csv[0].startswith("# ") and len(csv) == 2 + len(rows)

    # Every (model, decoder) result is cached: a second run computes nothing.
    def boom(*a, **k):
        raise AssertionError("recomputed a cached decoder")

    monkeypatch.setattr(D, "run_table1_spec", boom)
    monkeypatch.setattr(D, "run_sudoku_spec", boom)
    again = D.run_table1_decoders(cfg)
    assert again["presets"]["nae-sat-5-9-t"]["decoders"] == rows
    assert D.run_sudoku_decoders(cfg)["test_sets"]["easy"]["decoders"] == easy


def test_only_groups_split_the_rows(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):  # the bp group trains nothing
        D.run_table1_decoders(_cfg(tmp_path, only="bp"))
    model = D.run_table1_decoders(_cfg(tmp_path, only="model"))["presets"]["nae-sat-5-9-t"]
    bp = D.run_table1_decoders(_cfg(tmp_path, only="bp"))["presets"]["nae-sat-5-9-t"]
    assert set(bp["decoders"]) == {"bp-order", "exact-order"}
    assert set(model["decoders"]) | set(bp["decoders"]) == set(D.table1_decoders(15))
    assert not set(model["decoders"]) & set(bp["decoders"])
    with pytest.raises(ValueError, match="unknown row group"):
        _cfg(tmp_path, only="fast")


def test_block_size_for_prime_and_composite_lengths():
    assert D.block_size_for(31) is None and D.block_size_for(101) is None
    assert D.block_size_for(121) == 11 and D.block_size_for(78) == 13
    specs = D.table1_decoders(78)
    n_blocks = 78 // 13
    assert specs["semi-ar"]["steps"] % n_blocks == 0
    assert "semi-ar" not in D.table1_decoders(31)


def test_cli_rejects_bad_decoders_arguments(capsys):
    from lohard.cli import main

    assert main(["decoders", "nothing"]) == 2
    assert main(["decoders", "table1", "--only", "fast"]) == 2
    assert main(["decoders", "table1", "--num-samples", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
