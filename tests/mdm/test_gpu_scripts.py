"""The GPU session scripts in their CPU --smoke mode: every stage runs and every file comes back.

A lent GPU session is short and cannot be repeated at will, so the scripts it runs are
kept working here, on the same pipeline with tiny models.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils timeout")
@pytest.mark.parametrize("script, files", [
    ("gpu_mdm_table1_fig2.sh", {"table1.md", "table1.json", "fig2_per_mask_error.png",
                       "fig2_per_mask_error.json", "mdm_throughput.json", "logs.txt",
                       "results.tar.gz"}),
    ("gpu_mdm_pilearners.sh", {"pilearner_likelihood_nae_20_280.png",
                                  "pilearner_likelihood_nae_20_280.json", "logs.txt",
                                  "results.tar.gz"}),
    ("gpu_sudoku_tables.sh", {"sudoku_tables.md", "sudoku_tables.json", "sudoku_tables.csv",
                       "sudoku_order.png", "sudoku_order.json", "logs.txt", "results.tar.gz"}),
    ("gpu_decoders.sh", {"results.tar.gz", "logs.txt", "table1_5-9.pt", "sudoku_mdm.pt"}),
    ("gpu_zebra_tables.sh", {"zebra_table3_gpu.md", "zebra_table3_gpu.csv",
                             "zebra_table3_gpu.json", "zebra_table3_gpu_learning.png",
                             "logs.txt", "results.tar.gz"}),
])
def test_gpu_script_smoke(tmp_path, script, files):
    env = dict(os.environ, OUT=str(tmp_path), PYTHONPATH=str(ROOT))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(["bash", str(ROOT / "simulations" / script), "--smoke"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = {p.name for p in tmp_path.iterdir()}
    assert got == files, (got, proc.stdout[-2000:])
    assert len(got) <= 8  # what a device call brings back
    log = (tmp_path / "logs.txt").read_text()
    codes = re.findall(r"stage ([\w-]+): exit code (\d+)", log)
    assert codes and all(code == "0" for _, code in codes), codes
    if script == "gpu_mdm_table1_fig2.sh":
        # Figure 2 measured the half-way model against the final one (the paper's proxy)
        fig2 = json.loads((tmp_path / "fig2_per_mask_error.json").read_text())
        assert fig2["references"]["proxy"] and fig2["proxy_step"] > fig2["checkpoint_step"]
