#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time and
# exits non-zero when one crashes, leaks, times out or runs out of memory.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60). Targets run one after another on one core
# (in-process, no -jobs: libFuzzer job workers all log to ./fuzz-N.log);
# FUZZ_PARALLEL=N runs N targets at once. The working corpus is
# fuzz/corpus/<target> (not committed); the committed seeds in
# fuzz/seeds/<target> are read as a second corpus. Crash inputs are written to
# fuzz/artifacts/<target>/, logs to fuzz/logs/<target>.log.
# Needs the nightly toolchain and cargo-fuzz.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
target_dir="${CARGO_TARGET_DIR:-$PWD/fuzz/target}/fuzz"
parallel=${FUZZ_PARALLEL:-1}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build --release --debug-assertions --target-dir "$target_dir" || exit 1

mkdir -p fuzz/logs
run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    if cargo +nightly fuzz run --release --debug-assertions --target-dir "$target_dir" "$t" \
        "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -max_len=32768 -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1; then
        echo "fuzz $t: ok, $(grep -E '^#[0-9]+.*(DONE|pulse)' "fuzz/logs/$t.log" | tail -1)"
        grep -E 'stat::number_of_executed_units' "fuzz/logs/$t.log" | head -1
        return 0
    else
        echo "fuzz $t: FAILED (see fuzz/logs/$t.log and fuzz/artifacts/$t/)" >&2
        grep -E 'ERROR|panicked|SUMMARY' "fuzz/logs/$t.log" | head -5 >&2
        return 1
    fi
}

status=0
pids=()
for t in "${targets[@]}"; do
    if [ "$parallel" -le 1 ]; then
        run_one "$t" || status=1
    else
        run_one "$t" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$parallel" ]; then
            wait "${pids[0]}" || status=1
            pids=("${pids[@]:1}")
        fi
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || status=1
done
exit $status
