#!/usr/bin/env bash
# Whole-process benchmark of `taprec replay` (issue 7).
#
#   scripts/bench.sh            # 1000, 5000 and 20000 concurrent calls, and 20000 calls 5000 at a time
#   SCALES="5000:20" scripts/bench.sh
#   SCALES="20000:5:5000" scripts/bench.sh   # 20,000 calls, 5,000 at a time
#   RUNS=9 scripts/bench.sh     # rounds of measurement per scale (default 5)
#
# For each scale CALLS:SECONDS it generates with `taprec synth` a capture of
# CALLS concurrent G.711 calls (both directions, 20 ms packets, SIP included)
# lasting SECONDS of talk time; CALLS:SECONDS:AT_ONCE has only AT_ONCE of
# them at a time, calls ending and new ones starting all along as on a busy
# tap (memory per call then divides by AT_ONCE). Then it measures with
# /usr/bin/time -v:
#   - the floor: examples/read_floor reads every frame with the same FileReader
#     and discards it;
#   - `taprec replay --no-upload` of the same capture into a fresh spool;
#   - the same replay again with every thread pinned to one CPU (taskset -c 0):
#     what one core does;
# each RUNS times (default 5, the three interleaved round by round; the
# medians are reported: this VM's speed drifts by 10-20% between runs),
# and prints packets/s end to end (wall; the replay reads, records and writes
# on three threads), per CPU second (user + sys of all threads), on one core
# (the pinned run's wall), the ratio of the replay's wall time to the
# floor's, peak RSS, and memory per active call ((replay peak RSS - floor peak
# RSS) / calls). Then examples/check_recordings spot-checks the recordings:
# every call recorded, durations and the two parties' tones on the right
# channels.
#
# Environment: BENCH_DIR (captures, default /tmp/taprec-bench), BENCH_SPOOL
# (spool, default /dev/shm/taprec-bench-spool when /dev/shm exists: the
# spool fsyncs every recording, and on a slow disk that alone would be the
# figure), KEEP=1 keeps captures and spool afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
SCALES=${SCALES:-"1000:20 5000:20 20000:5 20000:5:5000"}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/tmp/taprec-bench}
if [[ -z "${BENCH_SPOOL:-}" ]]; then
    if [[ -d /dev/shm ]]; then BENCH_SPOOL=/dev/shm/taprec-bench-spool; else BENCH_SPOOL=$BENCH_DIR/spool; fi
fi
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin taprec --example read_floor --example check_recordings
TAPREC=$TARGET/release/taprec
FLOOR=$TARGET/release/examples/read_floor
CHECK=$TARGET/release/examples/check_recordings
mkdir -p "$BENCH_DIR"

# Runs a command under /usr/bin/time -v; sets WALL, CPU and RSS_KB.
measure() {
    local log=$BENCH_DIR/time.log
    /usr/bin/time -v -o "$log" "$@" >"$BENCH_DIR/out.log" 2>&1 || {
        echo "FAILED: $*" >&2; tail -5 "$BENCH_DIR/out.log" >&2; exit 1; }
    WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$log")
    CPU=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$log")
    RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
}

# The median of its arguments (numbers).
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

printf '%-11s %-9s %-11s %-11s %-11s %-9s %-8s %-9s %-9s\n' calls packets "pkt/s wall" "pkt/s cpu" "pkt/s 1core" floor_pps ratio peak_MB KiB/call
results=()
for scale in $SCALES; do
    IFS=: read -r calls secs at_once <<<"$scale"
    at_once=${at_once:-$calls}
    pcap=$BENCH_DIR/synth-$calls-$secs-$at_once.pcap
    if [[ ! -s $pcap ]]; then
        "$TAPREC" --log-level warn synth -o "$pcap" --calls "$calls" --concurrency "$at_once" --duration "$secs" >/dev/null
    fi
    frames=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["frames"])' "${pcap%.pcap}.json")
    cat "$pcap" >/dev/null # both runs read it from the page cache

    # RUNS rounds of the three measurements, interleaved so that the
    # machine's drift touches all three alike; the medians are reported.
    floor_walls=() floor_rsss=() one_walls=() walls=() cpus=() rsss=()
    for ((run = 0; run < RUNS; run++)); do
        measure "$FLOOR" "$pcap"
        floor_walls+=("$WALL") floor_rsss+=("$RSS_KB")

        # One core: every thread of the replay on CPU 0 (the spool removed
        # first, outside the timing, as for the main run).
        rm -rf "$BENCH_SPOOL"
        measure taskset -c 0 "$TAPREC" --log-level warn replay --no-upload --local-net 10.0.0.0/8 --spool "$BENCH_SPOOL" "$pcap"
        one_walls+=("$WALL")

        rm -rf "$BENCH_SPOOL"
        measure "$TAPREC" --log-level warn replay --no-upload --local-net 10.0.0.0/8 --spool "$BENCH_SPOOL" "$pcap"
        walls+=("$WALL") cpus+=("$CPU") rsss+=("$RSS_KB")
    done
    floor_wall=$(median "${floor_walls[@]}") floor_rss=$(median "${floor_rsss[@]}")
    one_core_wall=$(median "${one_walls[@]}")
    WALL=$(median "${walls[@]}") CPU=$(median "${cpus[@]}") RSS_KB=$(median "${rsss[@]}")
    check=$("$CHECK" "${pcap%.pcap}.json" "$BENCH_SPOOL" 50)

    row=$(python3 - "$calls" "$at_once" "$frames" "$WALL" "$CPU" "$one_core_wall" "$RSS_KB" "$floor_wall" "$floor_rss" <<'PY'
import sys
calls, at_once, frames = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
wall, cpu, one, rss, fwall, frss = (float(x) for x in sys.argv[4:])
label = str(calls) if at_once == calls else f"{calls}/{at_once}"

wall, fwall, cpu, one = max(wall, 0.01), max(fwall, 0.01), max(cpu, 0.01), max(one, 0.01)
print(f"{label:<11} {frames:<9} {frames/wall/1e6:<11.2f} {frames/cpu/1e6:<11.2f} {frames/one/1e6:<11.2f} "
      f"{frames/fwall/1e6:<9.2f} {wall/fwall:<8.2f} {rss/1024:<9.0f} {(rss-frss)/at_once:<9.1f}")
PY
)
    echo "$row   (Mpps; ratio = replay wall / floor wall)"
    echo "        seconds per round: floor ${floor_walls[*]}; one core ${one_walls[*]}; wall ${walls[*]}"
    echo "        $check"
    results+=("$row")
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$BENCH_SPOOL"
done
[[ ${KEEP:-0} == 1 ]] || rm -rf "$BENCH_DIR"
