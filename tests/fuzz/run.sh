#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each, starting from
# the committed seeds (tests/fuzz/corpus/<fuzzer>/) plus what earlier runs
# found (BUILD/fuzz-corpus/<fuzzer>/, kept in the build tree). Any crash, leak,
# undefined behaviour, or input running over its timeout fails the run; the
# input is saved as BUILD/fuzz-artifacts/<fuzzer>-crash-* (or -leak-, -timeout-)
# to be fixed and then committed to the seeds as regression-<what>.
#   usage: tests/fuzz/run.sh BUILD SECONDS [fuzzer...]
set -u
build=$1
seconds=$2
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
fuzzers=("$@")
if [ ${#fuzzers[@]} -eq 0 ]; then
    fuzzers=(fuzz_frame fuzz_master fuzz_master_job fuzz_blockd fuzz_worker fuzz_gateway)
fi
mkdir -p "$build/fuzz-artifacts"
failed=""
for f in "${fuzzers[@]}"; do
    work="$build/fuzz-corpus/$f"
    mkdir -p "$work"
    log="$build/fuzz-artifacts/$f.log"
    # -timeout: one input running longer is a hang; -rss_limit_mb: a leak or
    # an allocation driven by a length in the input.
    ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" "$build/bin/$f" \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$f-" \
        "$work" "$here/corpus/$f" >"$log" 2>&1
    rc=$?
    runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "$f: FAILED (exit $rc) after ${runs:-?} runs; see $log"
        grep -a -m3 -E 'ERROR|SUMMARY|fuzz:' "$log"
        failed="$failed $f"
    else
        echo "$f: ok, ${runs:-?} runs in ${seconds}s, $cov"
    fi
done
[ -z "$failed" ] || { echo "fuzzers failed:$failed"; exit 1; }
