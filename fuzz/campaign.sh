#!/usr/bin/env bash
# The fuzz campaign (issue #17): each target named (all by default) run to $RUNS executions
# (default 10^7) from its corpus in corpus/<target> (kept between runs), optimised, without a
# sanitizer (the fuzzed crates forbid `unsafe`), a hang of 10 s counted as a crash. Each run
# appends what libFuzzer measured to campaign.log:
#   date target seconds executions exit-status artifacts
# ($MAX_TIME seconds, when set, stops a run early; its line then says so by its executions.)
#
#   ./campaign.sh                       # every target
#   RUNS=1000000 ./campaign.sh wire_decode manifest_hls
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    case "$t" in
        udp_endpoint) max_len=4096 ;;
        *) max_len=65536 ;;
    esac
    extra=()
    if [ -n "${MAX_TIME:-}" ]; then
        extra+=("-max_total_time=$MAX_TIME")
    fi
    out=$(mktemp)
    start=$(date +%s)
    status=0
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none "$t" -- \
        -runs="$RUNS" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 "${extra[@]}" >"$out" 2>&1 || status=$?
    secs=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | awk '{print $2}' | tail -1)
    artifacts=$(find "artifacts/$t" -type f | wc -l)
    echo "$(date -u +%F) $t ${secs}s ${execs:-unknown} exit=$status artifacts=$artifacts" |
        tee -a campaign.log
    if [ "$status" -ne 0 ]; then
        tail -30 "$out" >&2
    fi
    rm -f "$out"
done
