"""A thresholds table interrupted with Ctrl-C resumes with only the missing runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "simulations" / "thresholds_table.py"
CELLS = re.compile(r"(\d+) cell\(s\), (\d+) from cache")
# small populations: the whole row takes seconds, and still consists of ~30 runs
ARGS = ["--only", "xor(k=3,parity=0)", "--population", "2000", "--sp-population", "1000",
        "--repeats", "2", "--n-jobs", "1"]


def _cmd(tmp: Path, name: str) -> list[str]:
    return [sys.executable, str(SCRIPT), *ARGS, "--cache-dir", str(tmp / name / "cache"),
            "--out", str(tmp / name / "table")]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _counts(log: str) -> tuple[int, int]:
    """(cells, cells read from the cache) summed over the log lines of one run."""
    pairs = [tuple(map(int, m.groups())) for m in CELLS.finditer(log)]
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def _rows(tmp: Path, name: str) -> list[dict]:
    rows = json.loads((tmp / name / "table.json").read_text())["rows"]
    keys = ("predicate", "d_sp", "d_sp_err", "d_cond", "d_cond_err", "transition")
    return [{k: r[k] for k in keys} for r in rows]


@pytest.mark.slow
def test_interrupted_table_resumes_with_only_the_missing_runs(tmp_path):
    # reference: one uninterrupted run
    ref = subprocess.run(_cmd(tmp_path, "ref"), capture_output=True, text=True, env=_env(),
                         timeout=600)
    assert ref.returncode == 0, ref.stderr
    total, cached = _counts(ref.stderr)
    assert total >= 10 and cached == 0

    # interrupted run: Ctrl-C (SIGINT) once a few runs are on disk
    cache = tmp_path / "int" / "cache" / "cavity"
    proc = subprocess.Popen(_cmd(tmp_path, "int"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(cache.glob("cells-*/*.json"))) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    # no report, no half-written file; every kept run is a complete JSON record
    assert not list(cache.glob("thresholds-*.json"))
    assert not [p for p in (tmp_path / "int").rglob("*") if p.name.endswith(".tmp")]
    kept = list(cache.glob("cells-*/*.json"))
    assert 4 <= len(kept) < total
    for p in kept:
        assert "result" in json.loads(p.read_text())

    # rerun: exactly the kept runs come from the cache, the rest is computed
    again = subprocess.run(_cmd(tmp_path, "int"), capture_output=True, text=True,
                           env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    total2, cached2 = _counts(again.stderr)
    assert total2 == total and cached2 == len(kept)
    # and the result is the uninterrupted one, to the last digit
    assert len(_rows(tmp_path, "ref")) == 1
    assert _rows(tmp_path, "int") == _rows(tmp_path, "ref")
