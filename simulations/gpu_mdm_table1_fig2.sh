#!/usr/bin/env bash
# The MDM GPU session, in one script (about 9.5 minutes of wall time at most):
#
#   1. benchmarks/mdm_throughput.py    training tokens/s and MFU, lohard vs eager   (<= 100 s)
#   2. lohard table1 --scale gpu       Table 1: one mdm-19m per NAE-SAT preset, the five of
#                                      Table 1 plus (20, 280) for Figure 2, 600 steps of
#                                      256 each (the paper trains 2000)              (<= 380 s)
#   3. lohard fig2 --scale gpu         Figure 2 (right) on the (20, 280) model at half its
#                                      steps, with the final model as the paper's proxy
#                                                                                    (<= 85 s)
#
# Each stage is hard-stopped with `timeout`; a stage that fails or times out does not stop
# the later ones, and Table 1 writes its outputs after every preset. Run folders
# (checkpoints) live under runs/gpu_mdm/ and are resumed by a second call.
#
# Outputs in $OUT (7 files): table1.md, table1.json, fig2_per_mask_error.png,
# fig2_per_mask_error.json, mdm_throughput.json, logs.txt (every stage's output and the
# exit codes) and results.tar.gz (table1.csv, table1.png, fig2_per_mask_error.csv,
# mdm_log_nae_20_280.json for `simulations/pilearner_likelihood.py --mdm-log`, and each
# model's config.json / log.jsonl / table1_eval.json).
#
# Usage (from the repository root):
#   OUT=<dir> bash simulations/gpu_mdm_table1_fig2.sh   # the GPU run
#   bash simulations/gpu_mdm_table1_fig2.sh --smoke      # the same pipeline on CPU, tiny
set -u -o pipefail

source "$(dirname "$0")/gpu_session.sh"
gpu_session_start gpu_mdm_table1_fig2 "$@"

if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_mdm_smoke
    rm -rf "$WORK"
    BENCH_ARGS=(--quick)
    # Two tiny presets; (8, 40) plays the role of (20, 280) for Figure 2.
    TABLE_ARGS=(--presets 6-20,8-40 --fig2-preset 8-40 --model tiny --steps 8 --eval-size 32
                --batch-size 8 --num-samples 8 --sample-steps 4 --oracle-samples 2
                --device cpu)
    FIG_ARGS=(--masks-per-l 16 --workers 2 --device cpu)
    T_BENCH=60 T_TABLE=120 T_FIG=60
else
    WORK=runs/gpu_mdm
    BENCH_ARGS=(--device cuda)
    # (20, 280) first: Figure 2 needs it even if the stage is cut short.
    TABLE_ARGS=(--device cuda --steps 600
                --presets 20-280,25-275,30-270,40-260,50-250,100-200)
    FIG_ARGS=(--device cuda --masks-per-l 1000 --steps 600)
    T_BENCH=100 T_TABLE=380 T_FIG=85
fi
STAGE_OUT="$WORK/out"
mkdir -p "$STAGE_OUT"
gpu_session_header

# Compile and cache the Numba posterior kernels of stage 3 in the background (one core),
# so that Figure 2's process and its workers load them from the cache.
python - > "$WORK/numba_warmup.log" 2>&1 <<'PY' &
from lohard.lo import bp_posterior, exact_posterior, nae_sat, protocol_mask
d = nae_sat(20, 280, trailing_token=True, rng=0)
tok, mask = d.sample(2, rng=1), protocol_mask(d, 2, 11, rng=2)
exact_posterior(d, tok, mask)
bp_posterior(d, tok, mask, rng=0)
print("numba kernels compiled")
PY
WARMUP_PID=$!

# 1. Throughput.
stage throughput "$T_BENCH" python benchmarks/mdm_throughput.py "${BENCH_ARGS[@]}" \
    --out "$STAGE_OUT/mdm_throughput.json"

# 2. Table 1 (+ the (20, 280) model for Figure 2).
stage table1 "$T_TABLE" python -m lohard table1 --scale gpu "${TABLE_ARGS[@]}" \
    --work-dir "$WORK/table1" --out-dir "$STAGE_OUT"

wait "$WARMUP_PID" 2>/dev/null
cat "$WORK/numba_warmup.log" >> "$LOG"

# The (20, 280) learning curve for the pi-learner figure.
python - "$WORK/table1" "$STAGE_OUT/mdm_log_nae_20_280.json" "$SMOKE" >> "$LOG" 2>&1 <<'PY'
import sys
from pathlib import Path
from lohard._util import atomic_write_json, provenance
from lohard.experiments.table1 import mdm_curve
from lohard.mdm import load_checkpoint
run = Path(sys.argv[1]) / ("nae-sat-8-40-t" if sys.argv[3] == "1" else "nae-sat-20-280-t")
if (run / "checkpoint.pt").exists():
    atomic_write_json(sys.argv[2], {**provenance(), "checkpoint": str(run),
                                    **mdm_curve(load_checkpoint(run))})
    print("wrote", sys.argv[2])
PY

# 3. Figure 2 on the Table 1 run's Figure 2 preset (trained in stage 2).
if [[ $SMOKE -eq 1 ]]; then
    RUN="$WORK/table1/nae-sat-8-40-t"
    stage fig2 "$T_FIG" python -m lohard fig2 "${FIG_ARGS[@]}" \
        --checkpoint "$RUN/checkpoint_step4.pt" --proxy-checkpoint "$RUN" --out-dir "$STAGE_OUT"
else
    stage fig2 "$T_FIG" python -m lohard fig2 --scale gpu "${FIG_ARGS[@]}" \
        --work-dir "$WORK/table1" --out-dir "$STAGE_OUT"
fi

# 4. Collect (at most 8 files in $OUT).
gpu_session_collect "$STAGE_OUT" table1.md table1.json fig2_per_mask_error.png fig2_per_mask_error.json \
    mdm_throughput.json
gpu_session_finish "$STAGE_OUT"/table1.csv "$STAGE_OUT"/table1.png "$STAGE_OUT"/fig2_per_mask_error.csv \
    "$STAGE_OUT"/mdm_log_nae_20_280.json "$WORK"/table1/*/config.json "$WORK"/table1/*/log.jsonl \
    "$WORK"/table1/*/table1_eval.json
