#!/usr/bin/env bash
# The MDM issue's GPU session, in one script (about 9.5 minutes of wall time at most):
#
#   1. benchmarks/mdm_throughput.py       training tokens/s and MFU, lohard vs eager  (<= 100 s)
#   2. simulations/table1_nae.py          Table 1: one mdm-19m per NAE-SAT preset, the
#                                         five of Table 1 plus (20, 280) for Figure 2,
#                                         steps planned from a 5.5-minute budget       (<= 380 s)
#   3. simulations/fig2_per_mask_error.py Figure 2 (right) on the (20, 280) model     (<= 85 s)
#
# Each stage is hard-stopped with `timeout`; a stage that fails or times out does not
# stop the later ones, and every stage writes its outputs incrementally. Run folders
# (checkpoints) live under runs/gpu_issue5/ and are resumed by a second call.
#
# Outputs in $OUT (7 files): table1.md, table1.json, fig2_per_mask_error.png,
# fig2_per_mask_error.json, mdm_throughput.json, logs.txt (every stage's output and the
# exit codes) and results.tar.gz (table1.csv, fig2_per_mask_error.csv,
# mdm_log_nae_20_280.json for `simulations/pilearner_likelihood.py --mdm-log`, and each
# model's config.json / log.jsonl / table1_eval.json).
#
# Usage (from the repository root):
#   bash simulations/gpu_issue5.sh            # the GPU run; OUT must be set
#   bash simulations/gpu_issue5.sh --smoke    # the same pipeline on CPU with tiny configs
set -u -o pipefail

SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=1
elif [[ $# -gt 0 ]]; then
    echo "usage: bash simulations/gpu_issue5.sh [--smoke]" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if [[ -z "${OUT:-}" ]]; then
    if [[ $SMOKE -eq 1 ]]; then
        OUT="$(mktemp -d)"
    else
        echo "OUT is not set (the folder whose files come back)" >&2
        exit 2
    fi
fi
mkdir -p "$OUT"

if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_issue5_smoke
    rm -rf "$WORK"
    BENCH_ARGS=(--quick)
    # Two tiny presets; (10, 50) plays the role of (20, 280) for Figure 2.
    TABLE_ARGS=(--quick --presets 8-40,10-50 --time-budget-min 0.4 --mdm-log-preset 10-50)
    FIG_N=10
    FIG_ARGS=(--quick --masks-per-l 16 --workers 2)
    T_BENCH=60 T_TABLE=90 T_FIG=60
else
    WORK=runs/gpu_issue5
    BENCH_ARGS=(--device cuda)
    TABLE_ARGS=(--device cuda --presets 20-280,25-275,30-270,40-260,50-250,100-200
                --time-budget-min 5.5 --num-samples 1000 --mdm-log-preset 20-280)
    FIG_N=20
    FIG_ARGS=(--device cuda --masks-per-l 1000)
    T_BENCH=100 T_TABLE=380 T_FIG=85
fi
STAGE_OUT="$WORK/out"
mkdir -p "$STAGE_OUT"
LOG="$OUT/logs.txt"
: > "$LOG"
T0=$(date +%s)

note() {
    echo "[gpu_issue5 $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"
}

stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 secs=$2
    shift 2
    note "stage $name: timeout ${secs}s: $*"
    local t=$(date +%s)
    timeout -k 10 "$secs" "$@" >> "$LOG" 2>&1
    local rc=$?
    note "stage $name: exit code $rc after $(( $(date +%s) - t ))s$([[ $rc -eq 124 || $rc -eq 137 ]] && echo ' (TIMED OUT)')"
    return 0
}

{
    echo "host $(hostname), $(date -u +%FT%TZ), smoke=$SMOKE"
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>&1
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    git rev-parse HEAD 2>/dev/null || true
} >> "$LOG"

# Compile and cache the Numba posterior kernels of stage 3 in the background (one core),
# so that Figure 2's process and its workers load them from the cache.
python - > "$WORK/numba_warmup.log" 2>&1 <<'EOF' &
from lohard.lo import bp_posterior, exact_posterior, nae_sat, protocol_mask
d = nae_sat(20, 280, trailing_token=True, rng=0)
tok, mask = d.sample(2, rng=1), protocol_mask(d, 2, 11, rng=2)
exact_posterior(d, tok, mask)
bp_posterior(d, tok, mask, rng=0)
print("numba kernels compiled")
EOF
WARMUP_PID=$!

# 1. Throughput.
stage throughput "$T_BENCH" python benchmarks/mdm_throughput.py "${BENCH_ARGS[@]}" \
    --out "$STAGE_OUT/mdm_throughput.json"

# torch.compile for the Table 1 training only if it worked in stage 1, was >= 1.3x faster
# than eager and compiled in under 90 s (Table 1's L = 301 compiles once more, ~ that long).
COMPILE=()
if [[ $SMOKE -eq 0 ]] && python - "$STAGE_OUT/mdm_throughput.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["results"]
    ok = (r["lohard"].get("compile") and "error" not in r["lohard"]
          and r["lohard"]["tokens_per_second"] > 1.3 * r["eager"]["tokens_per_second"]
          and r["lohard"]["warmup_seconds"] < 90)
except Exception:
    ok = False
sys.exit(0 if ok else 1)
EOF
then
    COMPILE=(--compile)
fi
note "Table 1 training with ${COMPILE[*]:-no torch.compile}"

# 2. Table 1 (+ the (20, 280) model for Figure 2 and its learning curve).
stage table1 "$T_TABLE" python simulations/table1_nae.py "${TABLE_ARGS[@]}" "${COMPILE[@]}" \
    --work-dir "$WORK/table1" --out-dir "$STAGE_OUT" \
    --mdm-log-out "$STAGE_OUT/mdm_log_nae_20_280.json"

wait "$WARMUP_PID" 2>/dev/null
cat "$WORK/numba_warmup.log" >> "$LOG"

# 3. Figure 2 on the (FIG_N, 300 - FIG_N) model trained in stage 2.
CKPT=$(python - "$STAGE_OUT/table1.json" "$FIG_N" <<'EOF'
import json, os, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
except Exception:
    rows = []
for r in rows:
    path = os.path.join(r["run_dir"], "checkpoint.pt")
    if r["N"] == int(sys.argv[2]) and os.path.exists(path):
        print(path)
        break
EOF
)
if [[ -n "$CKPT" ]]; then
    stage fig2 "$T_FIG" python simulations/fig2_per_mask_error.py "${FIG_ARGS[@]}" \
        --checkpoint "$CKPT" --out-dir "$STAGE_OUT"
else
    note "stage fig2: skipped, no (N = $FIG_N) checkpoint from stage 2"
fi

# 4. Collect (at most 8 files in $OUT).
for f in table1.md table1.json fig2_per_mask_error.png fig2_per_mask_error.json \
         mdm_throughput.json; do
    if [[ -f "$STAGE_OUT/$f" ]]; then cp "$STAGE_OUT/$f" "$OUT/$f"; else note "missing: $f"; fi
done
TARFILES=()
for f in "$STAGE_OUT"/table1.csv "$STAGE_OUT"/fig2_per_mask_error.csv \
         "$STAGE_OUT"/mdm_log_nae_20_280.json "$WORK"/table1/*/config.json \
         "$WORK"/table1/*/log.jsonl "$WORK"/table1/*/table1_eval.json; do
    [[ -f "$f" ]] && TARFILES+=("$f")
done
if [[ ${#TARFILES[@]} -gt 0 ]]; then
    tar -czf "$OUT/results.tar.gz" "${TARFILES[@]}"
fi
note "done in $(( $(date +%s) - T0 ))s; files in $OUT:"
ls -la "$OUT" | tee -a "$LOG"
