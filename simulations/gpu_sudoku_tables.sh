#!/usr/bin/env bash
# The Sudoku issue's GPU session, in one script (under 10 minutes of wall time):
#
#   1. lohard sudoku tables --scale gpu    Tables 2 and 5: data generated on the machine's
#                                          CPUs, mdm-6m and the two ARMs trained and every
#                                          test set decoded, in a 7.8-minute budget   (<= 520 s)
#   2. simulations/sudoku_order_figure.py  the order figure from the MDM of stage 1    (<= 55 s)
#
# Each stage is hard-stopped with `timeout`; a failed stage does not stop the next one.
# Training stops with a checkpoint at the budget, and the run folder (runs/gpu_sudoku_tables/)
# resumes on a second call; unfinished models are left out of the tables, which say so.
#
# Outputs in $OUT (7 files): sudoku_tables.md, sudoku_tables.json, sudoku_tables.csv,
# sudoku_order.png, sudoku_order.json, logs.txt (every stage's output and exit codes) and
# results.tar.gz (each model's config.json and log.jsonl). Commit the first five under
# figures/ with the same names.
#
# Usage (from the repository root):
#   bash simulations/gpu_sudoku_tables.sh            # the GPU run; OUT must be set
#   bash simulations/gpu_sudoku_tables.sh --smoke    # the same pipeline on CPU: 4x4, tiny, few steps
set -u -o pipefail

source "$(dirname "$0")/gpu_session.sh"
gpu_session_start gpu_sudoku_tables "$@"

if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_sudoku_tables_smoke
    rm -rf "$WORK"
    TABLE_ARGS=(--scale cpu --box 2 --steps 40 --n-train 2000 --n-test 200 --bp-limit 50
                --jobs 2)
    FIG_ARGS=(--scale cpu --box 2 --n-test 200)
    T_TABLE=240 T_FIG=60
else
    WORK=runs/gpu_sudoku_tables
    TABLE_ARGS=(--scale gpu --device cuda --max-minutes 7.8)
    FIG_ARGS=(--scale gpu --device cuda)
    T_TABLE=520 T_FIG=55
fi
STAGE_OUT="$WORK/out"
mkdir -p "$STAGE_OUT"
gpu_session_header

# 1. Tables 2 and 5.
stage tables "$T_TABLE" python -m lohard sudoku tables "${TABLE_ARGS[@]}" \
    --work-dir "$WORK/tables" --out "$STAGE_OUT/sudoku_tables"

# 2. The order figure, from the same run folder.
stage figure "$T_FIG" python simulations/sudoku_order_figure.py "${FIG_ARGS[@]}" \
    --work-dir "$WORK/tables" --out "$STAGE_OUT/sudoku_order"

# 3. Collect (at most 8 files in $OUT).
gpu_session_collect "$STAGE_OUT" sudoku_tables.md sudoku_tables.json sudoku_tables.csv \
    sudoku_order.png sudoku_order.json
gpu_session_finish "$WORK"/tables/*/config.json "$WORK"/tables/*/log.jsonl
