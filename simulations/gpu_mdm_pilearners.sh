#!/usr/bin/env bash
# The MDM issue's second GPU session: pi-learners at L&O scale (Sec. 3.2), under 10 minutes.
#
#   1. simulations/pilearner_likelihood.py  one pi-learner per (order, size) on
#                                           L&O-NAE-SAT (20, 280): orders natural,
#                                           closer-sqrt, closer-tenth, uniform; sizes small,
#                                           medium, large; 3000 steps of 256, bf16; the
#                                           runs share a 7.5-minute budget equally, and a
#                                           run stopped by its share is plotted as far as
#                                           it got (the legend says so)            (<= 540 s)
#
# With figures/mdm_log_nae_20_280.json in the tree (the learning curve of the (20, 280)
# MDM that gpu_mdm_table1_fig2.sh brings back in results.tar.gz; commit it first), the MDM's
# held-out loss is drawn against compute next to the pi-learners.
#
# Outputs in $OUT: pilearner_likelihood_nae_20_280.png and .json, logs.txt and
# results.tar.gz (the runs' checkpoints are not brought back). Commit the first two under
# figures/ with the same names. Runs checkpoint under runs/gpu_mdm_pilearners/ and a
# second call continues them.
#
# Usage (from the repository root):
#   OUT=<dir> bash simulations/gpu_mdm_pilearners.sh          # the GPU run
#   bash simulations/gpu_mdm_pilearners.sh --smoke             # CPU, tiny, seconds
set -u -o pipefail

source "$(dirname "$0")/gpu_session.sh"
gpu_session_start gpu_mdm_pilearners "$@"

if [[ $SMOKE -eq 1 ]]; then
    WORK=runs/gpu_mdm_pilearners_smoke
    rm -rf "$WORK"
    ARGS=(--quick --steps 200 --max-minutes 0.3)
    T_PIL=120
else
    WORK=runs/gpu_mdm_pilearners
    ARGS=(--device cuda --amp --dist nae-20-280
          --orders natural closer-sqrt closer-tenth uniform --sizes small medium large
          --steps 3000 --batch-size 256 --max-minutes 7.5)
    if [[ -f figures/mdm_log_nae_20_280.json ]]; then
        ARGS+=(--mdm-log figures/mdm_log_nae_20_280.json)
    fi
    T_PIL=540
fi
STAGE_OUT="$WORK/out"
mkdir -p "$STAGE_OUT"
gpu_session_header
note "pi-learner arguments: ${ARGS[*]}"

stage pilearners "$T_PIL" python simulations/pilearner_likelihood.py "${ARGS[@]}" \
    --work-dir "$WORK/runs" --out "$STAGE_OUT/pilearner_likelihood_nae_20_280"

gpu_session_collect "$STAGE_OUT" pilearner_likelihood_nae_20_280.png \
    pilearner_likelihood_nae_20_280.json
gpu_session_finish "$STAGE_OUT"/pilearner_likelihood_nae_20_280.json
