# Shared by the GPU session scripts (gpu_mdm_table1_fig2.sh, gpu_mdm_pilearners.sh,
# gpu_sudoku_tables.sh);
# source it, do not run it.
#
#   source "$(dirname "$0")/gpu_session.sh"
#   gpu_session_start NAME "$@"   # parses --smoke into SMOKE; cd to the repository root;
#                                 # sets PYTHONPATH; OUT (a temp dir in --smoke mode);
#                                 # LOG = $OUT/logs.txt (emptied); T0
#   note MESSAGE...                # a time-stamped line on stdout and in $LOG
#   stage NAME SECONDS COMMAND...  # run COMMAND under `timeout`, output into $LOG; a failed
#                                  # or timed-out stage is logged and the script goes on; a
#                                  # NAME listed in $LOHARD_GPU_SKIP (space-separated) is skipped
#   gpu_session_header             # host, torch / CUDA, GPU and git commit into $LOG
#   gpu_session_collect DIR FILE...  # copy the outputs into $OUT (at most 8 files come back)
#   gpu_session_finish PATH...       # the rest into $OUT/results.tar.gz; list $OUT

gpu_session_start() {
    GPU_SESSION_NAME=$1
    shift
    SMOKE=0
    if [[ "${1:-}" == "--smoke" ]]; then
        SMOKE=1
    elif [[ $# -gt 0 ]]; then
        echo "usage: bash simulations/$GPU_SESSION_NAME.sh [--smoke]" >&2
        exit 2
    fi
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
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
    LOG="$OUT/logs.txt"
    : > "$LOG"
    T0=$(date +%s)
}

note() {
    echo "[$GPU_SESSION_NAME $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"
}

stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 secs=$2
    shift 2
    if [[ " ${LOHARD_GPU_SKIP:-} " == *" $name "* ]]; then
        note "stage $name: skipped (LOHARD_GPU_SKIP)"
        return 0
    fi
    note "stage $name: timeout ${secs}s: $*"
    local t=$(date +%s)
    timeout -k 10 "$secs" "$@" >> "$LOG" 2>&1
    local rc=$?
    note "stage $name: exit code $rc after $(( $(date +%s) - t ))s$([[ $rc -eq 124 || $rc -eq 137 ]] && echo ' (TIMED OUT)')"
    return 0
}

gpu_session_header() {
    {
        echo "host $(hostname), $(date -u +%FT%TZ), smoke=$SMOKE, $(nproc) CPUs"
        python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>&1
        command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
        git rev-parse HEAD 2>/dev/null || true
    } >> "$LOG"
}

gpu_session_collect() {  # gpu_session_collect DIR FILE... : copy DIR/FILE into $OUT, log misses
    local dir=$1 f
    shift
    for f in "$@"; do
        if [[ -f "$dir/$f" ]]; then cp "$dir/$f" "$OUT/$f"; else note "missing: $f"; fi
    done
}

gpu_session_finish() {  # gpu_session_finish PATH... : the existing PATHs into $OUT/results.tar.gz
    local f
    local files=()
    for f in "$@"; do
        [[ -f "$f" ]] && files+=("$f")
    done
    if [[ ${#files[@]} -gt 0 ]]; then
        tar -czf "$OUT/results.tar.gz" "${files[@]}"
    fi
    note "done in $(( $(date +%s) - T0 ))s; files in $OUT:"
    ls -la "$OUT" | tee -a "$LOG"
}
