#!/usr/bin/env bash
# Two GPU sessions in one lease (under 10 minutes of wall time): the Sudoku tables
# (gpu_sudoku_tables.sh) and Table 1 + Figure 2 (gpu_mdm_table1_fig2.sh, without its
# throughput stage, whose timings would be disturbed by the other job) run side by side
# on the one GPU. The two share the card; neither script's models saturate it alone.
#
# Outputs in $OUT (4 files): sudoku.tar.gz and table1.tar.gz (every file each script
# brings back: tables, figures, logs, run configs) and each script's logs.txt as
# sudoku_logs.txt and table1_logs.txt.
#
# Usage (from the repository root):
#   OUT=<dir> bash simulations/gpu_batch.sh          # the GPU run
#   bash simulations/gpu_batch.sh --smoke             # both scripts' CPU smoke runs, side by side
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 2
SMOKE=()
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=(--smoke)
elif [[ $# -gt 0 ]]; then
    echo "usage: bash simulations/gpu_batch.sh [--smoke]" >&2
    exit 2
fi
if [[ -z "${OUT:-}" ]]; then
    if [[ ${#SMOKE[@]} -eq 1 ]]; then OUT="$(mktemp -d)"; else
        echo "OUT is not set (the folder whose files come back)" >&2
        exit 2
    fi
fi
mkdir -p "$OUT"
STAGE="$(mktemp -d)"
T0=$(date +%s)

OUT="$STAGE/sudoku" bash simulations/gpu_sudoku_tables.sh "${SMOKE[@]}" &
PID_SUDOKU=$!
OUT="$STAGE/table1" LOHARD_GPU_SKIP=throughput bash simulations/gpu_mdm_table1_fig2.sh \
    "${SMOKE[@]}" &
PID_TABLE1=$!
wait "$PID_SUDOKU"; RC_SUDOKU=$?
wait "$PID_TABLE1"; RC_TABLE1=$?

for name in sudoku table1; do
    if [[ -d "$STAGE/$name" ]]; then
        tar -czf "$OUT/$name.tar.gz" -C "$STAGE" "$name"
        [[ -f "$STAGE/$name/logs.txt" ]] && cp "$STAGE/$name/logs.txt" "$OUT/${name}_logs.txt"
    fi
done
echo "gpu_batch: sudoku exit $RC_SUDOKU, table1 exit $RC_TABLE1, $(( $(date +%s) - T0 ))s"
for f in "$STAGE"/sudoku/sudoku_tables.md "$STAGE"/table1/table1.md; do
    [[ -f "$f" ]] && { echo "== $f"; grep '^|' "$f"; }
done
ls -la "$OUT"
