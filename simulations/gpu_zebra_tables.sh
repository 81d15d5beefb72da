#!/usr/bin/env bash
# Zebra Table 3 in one GPU session (under 10 minutes of wall time): 4 x 4 puzzles,
# 100,000 training and 1100 test puzzles, the 6M MDM (6000 steps of 256) and the two 6M
# ARMs (2000 steps each), decoded with every decoder; `lohard zebra tables --scale gpu`.
# The CPU-scale table (3 x 3, 0.27M models) is figures/zebra_table3_cpu.md.
#
# Outputs in $OUT (6 files): zebra_table3_gpu.{md,csv,json}, zebra_table3_gpu_learning.png,
# logs.txt, results.tar.gz (each run's config.json and log.jsonl, the evaluations).
#
# Usage (from the repository root):
#   OUT=<dir> bash simulations/gpu_zebra_tables.sh     # the GPU run
#   bash simulations/gpu_zebra_tables.sh --smoke       # the same pipeline on CPU, tiny
set -u -o pipefail

source "$(dirname "$0")/gpu_session.sh"
gpu_session_start gpu_zebra_tables "$@"

if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_zebra_tables_smoke
    rm -rf "$WORK"
    ARGS=(--scale tiny --device cpu)
    STEM=zebra_table3_gpu
else
    WORK=runs/gpu_zebra_tables
    ARGS=(--scale gpu)
    STEM=zebra_table3_gpu
fi
FIG="$WORK/figures"
mkdir -p "$FIG"
gpu_session_header

# The run stops training at its --max-minutes budget (8 at the gpu scale) with a
# checkpoint, then decodes; the stage timeout leaves room for that.
stage zebra_tables 570 python -m lohard zebra tables "${ARGS[@]}" --work-dir "$WORK" \
    --out "$FIG/$STEM"

gpu_session_collect "$FIG" "$STEM.md" "$STEM.csv" "$STEM.json" "${STEM}_learning.png"
gpu_session_finish $(find "$WORK" -name config.json -o -name log.jsonl \
    -o -path '*/eval/*.json' | grep -v /data/)
[[ -f "$FIG/$STEM.md" ]] && grep '^|' "$FIG/$STEM.md" | head -12
