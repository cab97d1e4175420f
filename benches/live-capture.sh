#!/usr/bin/env bash
# live-capture.sh — highest packet rate `taprec run` captures with zero drops.
#
# Makes a synthetic capture with `taprec synth` (thousands of concurrent G.711
# calls), then for each rate: starts `taprec run` on one end of a veth pair
# (in a namespace of its own), replays the capture onto the other end with
# tcpreplay at that rate (packets/s, preloaded), and reads taprec's counters
# from its /metrics: packets captured, kernel drops (ring full), queue drops
# (recorder behind). Prints one line per rate and the highest rate with zero
# drops of both kinds. Traffic stays inside the two namespaces it creates,
# which are deleted on exit.
#
# Needs root, tcpreplay, curl, iproute2 and a release build (cargo build --release).
# Usage: benches/live-capture.sh [RATE...]     (default 100000 .. 800000)
#   env: CALLS (2000), DURATION (5 s per call), BUFFER_MIB (64), QUEUE (packets
#        between capture and recorder threads, 262144), TAPREC (binary)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAPREC="${TAPREC:-${CARGO_TARGET_DIR:-$HERE/target}/release/taprec}"
CALLS="${CALLS:-2000}"
DURATION="${DURATION:-5}"
BUFFER_MIB="${BUFFER_MIB:-64}"
QUEUE="${QUEUE:-262144}"
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100000 200000 300000 400000 500000 600000 800000)
[ -x "$TAPREC" ] || { echo "no release binary at $TAPREC (cargo build --release)" >&2; exit 2; }
for tool in tcpreplay curl ip; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (namespaces, capture)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/taprec-bench.XXXXXX)"
NS_TX="taprec-bench-$$-tx"
NS_RX="taprec-bench-$$-rx"
TAPREC_PID=""
cleanup() {
    [ -n "$TAPREC_PID" ] && kill -TERM "$TAPREC_PID" 2>/dev/null && wait "$TAPREC_PID" 2>/dev/null || true
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PCAP="$WORK/bench.pcap"
"$TAPREC" synth -o "$PCAP" --calls "$CALLS" --concurrency "$CALLS" --duration "$DURATION" >/dev/null 2>&1
echo "capture: $CALLS concurrent calls, $DURATION s each"

ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip -n "$NS_TX" link add tbtx$$ type veth peer name tbrx$$ netns "$NS_RX"
ip -n "$NS_TX" link set tbtx$$ up
ip -n "$NS_RX" link set tbrx$$ up
ip -n "$NS_RX" link set lo up

metric() { # name -> value (sum of the samples with that name)
    ip netns exec "$NS_RX" curl -s -m 5 http://127.0.0.1:9187/metrics |
        awk -v n="$1" '$1 == n { s += $2 } END { printf "%d\n", s }'
}

best=0
printf "%10s %12s %10s %12s %10s %10s\n" "target_pps" "achieved_pps" "sent" "captured" "kern_drop" "queue_drop"
for rate in "${RATES[@]}"; do
    rm -rf "$WORK/spool"
    ip netns exec "$NS_RX" "$TAPREC" run --interface tbrx$$ --spool "$WORK/spool" --no-upload \
        --buffer-mib "$BUFFER_MIB" --queue-packets "$QUEUE" --metrics-listen 127.0.0.1:9187 --log-level warn \
        2>"$WORK/taprec.log" &
    TAPREC_PID=$!
    for _ in $(seq 1 100); do
        [ "$(ip netns exec "$NS_RX" curl -s -m 1 http://127.0.0.1:9187/health || true)" = "ok" ] && break
        sleep 0.1
    done
    out=$(ip netns exec "$NS_TX" tcpreplay -K --pps "$rate" -i tbtx$$ "$PCAP" 2>&1)
    PACKETS=$(echo "$out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' | head -1)
    achieved=$(echo "$out" | sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' | head -1)
    # Let the recorder drain the ring and the queue.
    sleep 2
    captured=$(metric taprec_captured_packets_total)
    kdrop=$(metric taprec_kernel_dropped_packets_total)
    qdrop=$(metric taprec_queue_dropped_packets_total)
    kill -TERM "$TAPREC_PID"
    wait "$TAPREC_PID" || echo "taprec exited non-zero at $rate pps" >&2
    TAPREC_PID=""
    printf "%10s %12s %10s %12s %10s %10s\n" "$rate" "${achieved:-?}" "${PACKETS:-?}" "$captured" "$kdrop" "$qdrop"
    if [ "$kdrop" -eq 0 ] && [ "$qdrop" -eq 0 ] && [ "$captured" -ge "$PACKETS" ]; then
        a=${achieved%.*}
        [ "${a:-0}" -gt "$best" ] && best=$a
    fi
done
echo "highest rate with zero kernel and queue drops and every packet captured: ${best} packets/s"
