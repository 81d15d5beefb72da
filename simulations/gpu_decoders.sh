#!/usr/bin/env bash
# Issue 18's GPU session (under 10 minutes of wall time): the decoders side by side on
# models of the CPU tables' configurations, which the H200 trains in about a minute each
# (on the 2-core CPU: 72 minutes for Table 1, 100 for the Sudoku MDM).
#
#   1. Table 1: one process per CPU preset (five, in parallel; 2 CPU threads each): train
#      the cpu-1m model (2500 steps of 64), then every decoder (500 sequences each);
#   2. Sudoku 9x9: data (100,000 training puzzles), the cpu-1m MDM (3000 steps of 64, no
#      torch.compile), the model-only decoders and, beside them, the BP-ordered ones
#      (300 puzzles);
#   3. the tables (from the cached per-decoder results) and the speed-accuracy plot.
#
# The Sudoku data (runs/gpu_decoders/sudoku_tables_b3_cpu/data, seeded: the same files on
# any machine) can be generated beforehand and carried, which saves a minute there.
#
# Outputs in $OUT (4 files): results.tar.gz (figures/decoders_*.{md,csv,json},
# decoders_pareto.png, each run's config.json and log.jsonl, the per-decoder caches),
# logs.txt, and two checkpoints for a CPU cross-check: table1_10-90.pt, sudoku_mdm.pt.
#
# Usage (from the repository root):
#   OUT=<dir> bash simulations/gpu_decoders.sh     # the GPU run
#   bash simulations/gpu_decoders.sh --smoke       # the same pipeline on CPU, tiny
set -u -o pipefail

source "$(dirname "$0")/gpu_session.sh"
gpu_session_start gpu_decoders "$@"

DRIVER=(python simulations/decoders_side_by_side.py)
if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_decoders_smoke
    rm -rf "$WORK"
    ARGS=(--smoke --device cpu)
    PRESETS=(6-9 5-9)
    T_T1=200 T_SD=200
else
    WORK=runs/gpu_decoders
    ARGS=(--device cuda --no-compile)
    PRESETS=(10-110 10-90 10-67 10-50 10-20)
    T_T1=420 T_SD=420
fi
FIG="$WORK/figures"
mkdir -p "$FIG"
gpu_session_header

# On the GPU machine the stages run side by side; in --smoke mode (2 CPU cores) one at a
# time, in the same order, so that each waits for nothing.
bg() {
    if [[ $SMOKE -eq 1 ]]; then "$@"; else "$@" & pids+=($!); fi
}

# 1. Table 1 presets in parallel (each its own stage log line).
pids=()
for pr in "${PRESETS[@]}"; do
    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 bg stage "table1_$pr" "$T_T1" "${DRIVER[@]}" table1 \
        --preset "$pr" --only model "${ARGS[@]}" --work-root "$WORK" --out-dir "$FIG"
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 bg stage "table1_bp_$pr" "$T_T1" bash -c \
        "until [[ -f $WORK/table1_cpu/nae-sat-${pr}-t/decoders/margin.json ]]; do sleep 2; done; \
         ${DRIVER[*]} table1 --preset $pr --only bp ${ARGS[*]} --work-root $WORK --out-dir $FIG"
done

# 2. Sudoku: training and the model-only decoders; the BP-ordered ones start once the
#    first decoder's result exists (the model is trained by then).
OMP_NUM_THREADS=4 bg stage sudoku "$T_SD" "${DRIVER[@]}" sudoku --only model "${ARGS[@]}" \
    --work-root "$WORK" --out-dir "$FIG"
OMP_NUM_THREADS=4 bg stage sudoku_bp "$T_SD" bash -c \
    "until [[ -f $WORK/sudoku_tables_b3_cpu/decoders/easy_vanilla.json ]]; do sleep 2; done; \
     ${DRIVER[*]} sudoku --only bp ${ARGS[*]} --work-root $WORK --out-dir $FIG"
[[ ${#pids[@]} -gt 0 ]] && wait "${pids[@]}"

# 3. Tables and plot from the caches (every result is cached, so nothing is recomputed).
stage tables 100 "${DRIVER[@]}" all "${ARGS[@]}" --work-root "$WORK" --out-dir "$FIG"

cp "$WORK/table1_cpu/nae-sat-${PRESETS[1]}-t/checkpoint.pt" "$OUT/table1_${PRESETS[1]}.pt" \
    2>/dev/null || note "missing: the ${PRESETS[1]} checkpoint"
cp "$WORK/sudoku_tables_b3_cpu/mdm/checkpoint.pt" "$OUT/sudoku_mdm.pt" 2>/dev/null \
    || note "missing: the Sudoku checkpoint"
tar -czf "$OUT/results.tar.gz" "$FIG" $(find "$WORK" -name config.json -o -name log.jsonl \
    -o -path '*/decoders/*.json' | grep -v /data/) 2>> "$LOG"
note "done in $(( $(date +%s) - T0 ))s; files in $OUT:"
ls -la "$OUT" | tee -a "$LOG"
for f in "$FIG"/decoders_table1_cpu.md "$FIG"/decoders_sudoku_9x9.md; do
    [[ -f "$f" ]] && { echo "== $f"; grep '^|' "$f" | head -30; }
done
