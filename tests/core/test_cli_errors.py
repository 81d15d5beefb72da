"""The CLI's one error path: bad input, missing extras, interrupts, --help everywhere.

Every case runs the CLI in-process (``lohard.cli.main``) and checks the exit status, that
no traceback reaches stderr, and that the message names what is wrong.
"""

import argparse
import importlib.util
import os
import subprocess
import sys

import pytest

from lohard.cli import build_parser, main


def _verbs(parser=None, path=()):
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _verbs(sub, (*path, name))


def test_every_verb_has_help_a_description_and_help_for_every_option(capsys):
    verbs = list(_verbs())
    assert len(verbs) >= 14
    missing = []
    for path, sub in verbs:
        if any(a.dest == "_needs_torch" for a in sub._actions) or sub.add_help is False:
            continue  # a placeholder of a missing extra
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: lohard " + " ".join(path)), path
        if not sub.description:
            missing.append(" ".join(path) + ": no description")
        for a in sub._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not a.help:
                missing.append(f"{' '.join(path)} {a.option_strings or a.dest}: no help")
    assert not missing, missing


def test_top_level_help_says_what_lohard_does(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "where inference is hard" in out and "d = (k-1) k P / N" in out
    assert out.count("  lohard ") >= 3  # example commands in the epilog
    assert main([]) == 2  # no command: the help, status 2


#: (argv, key words of the message). Each must exit 2 with one line, no traceback.
BAD = [
    (["fig4", "--degrees", ""], "at least one degree"),
    (["fig4", "--degrees", ","], "at least one degree"),
    (["fig4", "--degrees", "1e308"], "at most P = 1e+08 clauses"),
    (["fig4", "--degrees", "-3"], "must be finite and >= 0"),
    (["fig4", "--degrees", "50,x"], "comma-separated numbers"),
    (["fig4", "--jobs", "0"], "argument --jobs: must be an integer >= 1 (or -1)"),
    (["fig4", "--damping", "1"], "argument --damping: must be a finite number >= 0 and < 1"),
    (["fig4", "--damping", "nan"], "argument --damping"),
    (["fig4", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    (["fig4", "--bogus"], "unrecognized arguments: --bogus"),
    (["thresholds", "--seed", "-1"], "argument --seed"),
    (["table1", "--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["table1", "--steps", "0"], "argument --steps: must be an integer >= 1"),
    (["table1", "--scale", "tpu"], "invalid choice: 'tpu'"),
    (["fig2", "--masks-per-l", "-5"], "argument --masks-per-l"),
    (["sudoku", "generate", "--n", "10", "--out", "x.npz", "--bogus"],
     "unrecognized arguments"),
    (["sudoku", "generate", "--n", "10", "--out", "x.npz", "--seed", "-1"],
     "argument --seed: must be an integer >= 0"),
    (["sudoku", "generate", "--n", "10", "--out", "x.npz", "--jobs", "0"],
     "argument --jobs: must be an integer >= 1 (or -1)"),
    (["window", "--predicate", "not-equal", "-m", "5", "-n", "30", "--observations", "100000",
      "--d-cond", "13.23"], "exceed the N!/(N-k)! = 870 ordered k-subsets"),
]


def test_window_at_large_n_prints_two_different_ends(capsys):
    assert main(["window", "--predicate", "not-equal", "-m", "5", "-n", "10000000",
                 "--d-cond", "13.23"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("hard window")][0]
    lo, hi = line.split(" < alpha < ")
    assert lo.split()[-1] != hi.split()[0], line
    assert "1 - alpha between 8.269e-07 and 1e-06" in line


@pytest.mark.parametrize(("argv", "words"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_status_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert words in err, err
    assert err.strip().splitlines()[-1].startswith(f"lohard {argv[0]}")


TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(not TORCH, reason="the torch verbs need the torch extra")
@pytest.mark.parametrize(("argv", "words"), [
    (["train-mdm", "--out", "r", "--lr", "inf"], "argument --lr: must be a finite number > 0"),
    (["train-mdm", "--out", "r", "--weight-decay", "nan"], "argument --weight-decay"),
    (["train-mdm", "--out", "r", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    (["train-mdm", "--out", "r", "--dist", "nae-sat-20-280", "--config", "tiny"],
     "--max-seq-len 300"),
    (["eval-mdm", "run", "--seed", "-1"], "argument --seed"),
    (["eval-mdm", "run", "--samplers", ","], "--samplers names no sampler"),
    (["sudoku", "train", "--out", "r", "--lr", "0"], "argument --lr"),
    (["sudoku", "eval", "c.pt", "--noise-scale", "-1"], "argument --noise-scale"),
    (["sudoku", "tables", "--noise-mode", "gauss"], "invalid choice: 'gauss'"),
])
def test_bad_input_of_the_torch_verbs(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err, err
    assert not (tmp_path / "r").exists()


def _raising(exc):
    def cmd(args):
        raise exc
    return cmd


def test_ctrl_c_exits_130_and_says_how_to_resume(capsys, monkeypatch):
    import lohard.cli as cli

    monkeypatch.setattr(cli, "_cmd_fig4", _raising(KeyboardInterrupt()))
    assert main(["fig4"]) == 130
    err = capsys.readouterr().err
    assert "lohard fig4: interrupted" in err and "rerun the same command" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("exc", "status", "words"), [
    (ModuleNotFoundError("No module named 'dask'", name="dask"), 2,
     'pip install "lohard[dask]"'),
    (ModuleNotFoundError("No module named 'ray'", name="ray"), 2, 'pip install -e ".[ray]"'),
    (MemoryError(), 2, "out of memory"),
    (FloatingPointError("loss is nan at step 3"), 2, "loss is nan at step 3"),
    (KeyError("oops"), 1, "internal error (KeyError"),
])
def test_every_exception_is_one_line(exc, status, words, capsys, monkeypatch):
    import lohard.cli as cli

    monkeypatch.setattr(cli, "_cmd_thresholds", _raising(exc))
    assert main(["thresholds"]) == status
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(monkeypatch):
    import lohard.cli as cli

    monkeypatch.setattr(cli, "_cmd_thresholds", _raising(ValueError("bad d")))
    with pytest.raises(ValueError, match="bad d"):
        main(["thresholds", "--debug"])
    with pytest.raises(ValueError, match="bad d"):
        main(["--debug", "thresholds"])


@pytest.mark.skipif(importlib.util.find_spec("dask") is not None,
                    reason="dask is installed here")
def test_missing_dask_extra_names_the_install(capsys, tmp_path):
    rc = main(["fig4", "--backend", "dask", "--n", "60", "--degrees", "50", "--seeds", "1",
               "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "dask" in err and "pip install" in err, err


@pytest.mark.parametrize("argv", [["sudoku", "train", "--out", "r"], ["sudoku", "tables"],
                                  ["train-mdm", "--out", "r"]])
def test_torch_verbs_without_torch_say_so(argv, tmp_path):
    """With torch unimportable (a fresh install without the extra)."""
    # A finder that refuses torch, as on a machine without it (sys.modules['torch'] = None
    # would break scipy, which looks torch up there).
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from lohard.cli import main\n"
            f"raise SystemExit(main({argv!r}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "needs PyTorch" in res.stderr and "Traceback" not in res.stderr
    assert 'pip install "lohard[torch]"' in res.stderr and '".[torch]"' in res.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_in_a_real_run_stops_it_with_130(tmp_path):
    """SIGINT reaches `lohard sudoku generate` inside its Numba batches: it stops within
    seconds, keeps finished chunks and says so, with no traceback."""
    import signal
    import time

    out = tmp_path / "x.npz"
    proc = subprocess.Popen([sys.executable, "-m", "lohard", "sudoku", "generate", "--n",
                             "1000000", "--chunk-size", "1000", "--jobs", "1", "--out",
                             str(out), "--quiet"], cwd=tmp_path, stderr=subprocess.PIPE,
                            text=True, env={**os.environ,
                                            "PYTHONPATH": os.pathsep.join(sys.path)})
    parts = tmp_path / "x.npz.parts"

    def finished():  # the hidden .tmp of a chunk being written does not count
        return sorted(parts.glob("chunk_*.npz")) if parts.exists() else []

    deadline = time.time() + 90
    while time.time() < deadline and not finished():
        time.sleep(0.2)
    assert finished(), "no chunk was written in 90 s"
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("lohard sudoku generate did not stop within 30 s of SIGINT")
    assert proc.returncode == 130, err
    assert "lohard sudoku generate: interrupted" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert not out.exists() and finished()  # the finished chunks stay
