"""Data-parallel training (torchrun's environment, DDP) on the CPU: 2 gloo ranks on 127.0.0.1.

The ranks are separate processes started with the variables torchrun sets (WORLD_SIZE,
RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); each runs ``lohard train-mdm``.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from lohard.mdm import TrainConfig, load_checkpoint, train  # noqa: E402
from lohard.mdm import cli as mdm_cli  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend")

#: A subprocess that has not finished in this long is hanging: the test fails, not waits.
RANK_TIMEOUT_S = 90
#: Rendezvous timeout of the launched ranks and of the unreachable-endpoint tests.
RDZV_S = 2.0

# One rank: ``lohard train-mdm``, optionally SIGKILLed at its TEST_KILL_AT-th optimiser step
# (before that step's backward pass, i.e. while the other rank waits in its all-reduce).
RANK_SCRIPT = """
import os, signal, sys
import torch
torch.set_num_threads(1)
kill_at = int(os.environ.get("TEST_KILL_AT", "0"))
if kill_at:
    import lohard.mdm._train as T
    real, calls = T.optimiser_step, [0]
    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    T.optimiser_step = step
from lohard.cli import main
sys.exit(main(sys.argv[1:]))
"""

SETTINGS = dict(dist="nae-sat-6-10", model="tiny", steps=8, batch_size=8, lr=3e-3,
                warmup_steps=2, eval_every=4, eval_size=16, log_every=2, ckpt_every=2,
                device="cpu", seed=5)


def _cfg(**kw):
    return TrainConfig(**{**SETTINGS, **kw})


def _cli_args(out, **kw):
    s = {**SETTINGS, **kw}
    args = ["train-mdm", "--out", str(out), "--quiet", "--config", s.pop("model")]
    for key, val in s.items():
        args += [f"--{key.replace('_', '-')}", str(val)]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_env(rank: int, size: int, port: int, **extra) -> dict:
    return {**os.environ, "WORLD_SIZE": str(size), "RANK": str(rank), "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
            "LOHARD_RDZV_TIMEOUT": "30", **{k: str(v) for k, v in extra.items()}}


def _launch(outs, *, kill_rank=None, kill_at=0, flags=(), **kw):
    """Run one ``lohard train-mdm`` per entry of ``outs`` (rank r writes to ``outs[r]``) and
    return ``[(returncode, stderr), ...]``; a rank still running after the timeout fails."""
    return _run_ranks(RANK_SCRIPT, [[*_cli_args(out, **kw), *flags] for out in outs],
                      kill_rank=kill_rank, kill_at=kill_at)


def _run_ranks(script: str, argvs, *, kill_rank=None, kill_at=0):
    """``python -c script *argvs[r]`` as rank r of ``len(argvs)``; ``[(rc, stderr), ...]``."""
    port = _free_port()
    procs = []
    for rank, argv in enumerate(argvs):
        extra = {"TEST_KILL_AT": kill_at} if rank == kill_rank else {}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", script, *map(str, argv)],
            env=_rank_env(rank, len(argvs), port, **extra), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=RANK_TIMEOUT_S)
            results.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _losses(history, key):
    return [(e["step"], e[key]) for e in history if key in e]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One process, global batch 8: the reference run."""
    torch.set_num_threads(1)
    return train(_cfg(), tmp_path_factory.mktemp("single") / "run", progress=False)


def test_two_ranks_equal_one_process_and_only_rank0_writes(tmp_path, single):
    outs = [tmp_path / "rank0", tmp_path / "rank1"]
    results = _launch(outs)
    assert [rc for rc, _ in results] == [0, 0], results
    # Only rank 0 writes: rank 1 was given its own folder and left it uncreated.
    assert not outs[1].exists()
    assert sorted(p.name for p in outs[0].iterdir()) == ["checkpoint.pt", "config.json",
                                                         "log.jsonl"]
    ck = load_checkpoint(outs[0])
    assert ck.step == 8
    # Same weights to float rounding: the slices' gradients are averaged in another order
    # than one batch's, ~1e-7 relative; 8 AdamW steps of lr 3e-3 keep it far below 1e-5.
    ref = single.model.state_dict()
    assert _max_diff(ck.model.state_dict(), ref) < 1e-5
    # The logged losses are the global batch's, as in one process.
    hist = [json.loads(line) for line in (outs[0] / "log.jsonl").read_text().splitlines()]
    for key in ("train_loss", "eval_loss"):
        got, want = _losses(hist, key), _losses(single.history, key)
        assert [s for s, _ in got] == [s for s, _ in want] and len(got) >= 2
        assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(got, want, strict=True))
    assert json.loads((outs[0] / "config.json").read_text())["world_size"] == 2
    # The comparison can fail: rank 0's half batch alone (batch 4) trains other weights.
    half = train(_cfg(batch_size=4, steps=2, ckpt_every=0), tmp_path / "half",
                 progress=False)
    two = train(_cfg(steps=2, ckpt_every=0), tmp_path / "two", progress=False)
    assert _max_diff(half.model.state_dict(), two.model.state_dict()) > 1e-4


def test_killed_rank_fails_cleanly_and_the_run_resumes(tmp_path, single):
    out = tmp_path / "run"
    # Rank 1 dies at its 5th step, after the checkpoint of step 4.
    t0 = time.perf_counter()
    (rc0, err0), (rc1, _) = _launch([out, out], kill_rank=1, kill_at=5)
    assert rc1 == -9
    assert rc0 == 2, err0
    last = err0.strip().splitlines()[-1]
    assert last.startswith("lohard train-mdm: error: rank 0 of 2 on ") and "lost contact" in last
    assert "--resume" in last
    assert time.perf_counter() - t0 < RANK_TIMEOUT_S
    # No half-written file: the last checkpoint loads, and no temporary file is left.
    assert load_checkpoint(out).step == 4
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    # Resuming with other settings fails on both ranks alike, without hanging.
    results = _launch([out, out], flags=["--resume"], lr=1e-3)
    assert [rc for rc, _ in results] == [2, 2]
    assert all("was trained with other settings" in err.strip().splitlines()[-1]
               for _, err in results)
    assert load_checkpoint(out).step == 4
    # Resume with one process (another number of ranks): the run ends as the reference.
    done = train(_cfg(), out, resume=True, progress=False)
    assert done.finished and done.step == 8
    assert _max_diff(done.model.state_dict(), single.model.state_dict()) < 1e-5


# Sudoku MDM and ARM on 2 ranks, in a process group the caller created (train_sudoku
# then uses it and leaves it to the caller).
SUDOKU_SCRIPT = """
import json, sys
import torch, torch.distributed as dist
torch.set_num_threads(1)
from lohard.mdm import SudokuTrainConfig, train_sudoku
from lohard.sudoku import load_puzzles
dist.init_process_group("gloo")
try:
    puzzles = load_puzzles(sys.argv[1])
    for kind, fields in json.loads(sys.argv[3]).items():
        train_sudoku(SudokuTrainConfig(**fields), puzzles, f"{sys.argv[2]}/{kind}",
                     progress=False)
finally:
    dist.destroy_process_group()
"""


def test_sudoku_mdm_and_arm_two_ranks_equal_one_process(tmp_path):
    from lohard.mdm import SudokuTrainConfig, load_sudoku_model, train_sudoku
    from lohard.sudoku import generate_puzzles

    puzzles = generate_puzzles(300, box=2, rng=101, jobs=1)
    path = puzzles.save(tmp_path / "train.npz")
    configs = {kind: dict(kind=kind, box=2, model="tiny", steps=6, batch_size=8,
                          warmup_steps=2, log_every=2, ckpt_every=3, device="cpu")
               for kind in ("mdm", "arm")}
    outs = [tmp_path / "rank0", tmp_path / "rank1"]
    results = _run_ranks(SUDOKU_SCRIPT, [[path, out, json.dumps(configs)] for out in outs])
    assert [rc for rc, _ in results] == [0, 0], results
    assert not outs[1].exists()
    for kind, fields in configs.items():
        single = train_sudoku(SudokuTrainConfig(**fields), puzzles, tmp_path / kind,
                              progress=False)
        two = load_sudoku_model(outs[0] / kind)
        assert two.step == 6
        # Float rounding of the averaged gradients only (see the L&O test).
        assert _max_diff(two.model.state_dict(), single.model.state_dict()) < 1e-5
        got, want = _losses(two.history, "train_loss"), _losses(single.history, "train_loss")
        assert len(got) == 3
        assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(got, want, strict=True))


def test_rank_slices_partition_the_batch():
    from lohard.mdm._distributed import World

    slices = [World(rank=r, size=4).rows(12) for r in range(4)]
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert World().rows(7) == slice(0, 7)


def test_given_masks_are_the_drawn_ones():
    # The training loop draws the global batch's masks itself and passes a rank's rows;
    # with one rank that must be exactly the draw mdm_loss makes from the same generator.
    from lohard.mdm import build_model, loss_masks, mdm_loss, model_config, resolve_distribution

    dist = resolve_distribution("nae-sat-6-10")
    torch.manual_seed(0)
    model = build_model(model_config("tiny"), dist)
    tokens = torch.from_numpy(dist.sample(8, rng=1))
    for kind in ("elbo", "eq1"):
        g = torch.Generator().manual_seed(7)
        drawn = mdm_loss(model, tokens, kind=kind, generator=g, reduction="none")
        g = torch.Generator().manual_seed(7)
        masks = loss_masks(8, dist.length, kind=kind, generator=g)
        given = mdm_loss(model, tokens, kind=kind, masks=masks, reduction="none")
        assert torch.equal(drawn, given)
        rows = mdm_loss(model, tokens[4:], kind=kind, masks=(masks[0][4:], masks[1][4:]),
                        reduction="none")
        assert torch.equal(rows, given[4:])


def _as_rank(monkeypatch, rank: int, size: int = 2, port: int | None = None) -> None:
    monkeypatch.setenv("WORLD_SIZE", str(size))
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port or _free_port()))
    monkeypatch.setenv("LOHARD_RDZV_TIMEOUT", str(RDZV_S))


def test_batch_not_divisible_by_the_ranks(tmp_path, monkeypatch, capsys):
    _as_rank(monkeypatch, 0, size=3)
    with pytest.raises(ValueError, match="global batch size 8 is not divisible by the 3 ranks"):
        train(_cfg(), tmp_path / "a", progress=False)
    parser = mdm_cli.argparse.ArgumentParser()
    mdm_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(_cli_args(tmp_path / "b"))
    assert args.func(args) == 2
    assert "error: the global batch size 8 is not divisible" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_unreachable_rendezvous_fails_within_the_timeout(tmp_path, monkeypatch, rank):
    # Rank 1 finds nobody listening at the port; rank 0 listens and no other rank comes.
    port = _free_port()
    _as_rank(monkeypatch, rank, port=port)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"rank {rank} of 2 on .* could not complete the "
                                         rf"rendezvous at 127\.0\.0\.1:{port} within 2 s"):
        train(_cfg(), tmp_path / "a", progress=False)
    # torch's TCP client retries once inside the timeout, so allow twice it plus slack.
    assert time.perf_counter() - t0 < 2 * RDZV_S + 10
    assert not torch.distributed.is_initialized()
    assert not (tmp_path / "a").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a rank without a GPU")
def test_cuda_on_a_rank_without_gpu(tmp_path, monkeypatch):
    _as_rank(monkeypatch, 1)
    with pytest.raises(ValueError, match=r"rank 1 of 2 on .*: device 'cuda' requested but "
                                         r"torch.cuda.is_available\(\) is False"):
        train(_cfg(device="cuda"), tmp_path / "a", progress=False)


def test_bad_rank_variables(tmp_path, monkeypatch):
    _as_rank(monkeypatch, 2)
    with pytest.raises(ValueError, match=r"RANK must be in \[0, WORLD_SIZE - 1 = 1\], got 2"):
        train(_cfg(), tmp_path / "a", progress=False)
    _as_rank(monkeypatch, 0)
    monkeypatch.setenv("LOHARD_RDZV_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LOHARD_RDZV_TIMEOUT must be a finite number"):
        train(_cfg(), tmp_path / "a", progress=False)
