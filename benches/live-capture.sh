#!/usr/bin/env bash
# live-capture.sh — highest packet rate `taprec run` captures with zero drops.
#
# Makes a synthetic capture with `taprec synth` (thousands of concurrent G.711
# calls), then for each rate: starts `taprec run` on one end of a veth pair
# (in a namespace of its own), sends the capture onto the other end at that
# rate (packets/s), and reads taprec's counters from its /metrics: packets
# captured, kernel drops (ring full), queue drops (recorder thread behind),
# recordings written. Prints one line per rate and the highest rate with zero
# drops of both kinds and every packet captured. Traffic stays inside the
# two namespaces it creates, which are deleted on exit.
#
# The generator is examples/pcap_sender.rs (sendmmsg on an AF_PACKET socket,
# paced per batch of 64); GEN=tcpreplay uses `tcpreplay -K --pps` instead,
# which tops out near 450,000 packets/s here. "achieved" is what arrived on
# the receiving interface (its rx_packets counter) divided by the sending
# time, not the rate asked for. "lag" is how many captured packets the
# recorder thread had not yet handled when the sender finished (the queue's
# depth then): the capture must hold more packets than the queue for a queue
# drop to be possible at all, hence the default of 20 s calls (4 million
# packets) against a 262,144-packet queue.
#
# Needs root, curl, iproute2 (tcpreplay for GEN=tcpreplay) and release builds:
#   cargo build --release --bin taprec --example pcap_sender
# Usage: benches/live-capture.sh [RATE...]     (default 200000 .. 800000)
#   env: CALLS (2000), DURATION (20 s per call), BUFFER_MIB (64), QUEUE (packets
#        between capture and recorder threads, 262144), SPOOL (where the spools go,
#        one per rate; default the work dir under /tmp, on disk), GEN (sender|tcpreplay),
#        PIN (1: taprec on CPU 1, sender on CPU 0), TAPREC, SENDER
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAPREC="${TAPREC:-${CARGO_TARGET_DIR:-$HERE/target}/release/taprec}"
SENDER="${SENDER:-${CARGO_TARGET_DIR:-$HERE/target}/release/examples/pcap_sender}"
GEN="${GEN:-sender}"
CALLS="${CALLS:-2000}"
DURATION="${DURATION:-20}"
BUFFER_MIB="${BUFFER_MIB:-64}"
QUEUE="${QUEUE:-262144}"
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(200000 300000 400000 500000 600000 800000)
[ -x "$TAPREC" ] || { echo "no release binary at $TAPREC (cargo build --release)" >&2; exit 2; }
if [ "$GEN" = tcpreplay ]; then
    command -v tcpreplay >/dev/null || { echo "needs tcpreplay" >&2; exit 2; }
else
    [ -x "$SENDER" ] || { echo "no sender at $SENDER (cargo build --release --example pcap_sender)" >&2; exit 2; }
fi
for tool in curl ip; do
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
    [ -n "${SPOOL:-}" ] && rm -rf "$SPOOL"/spool-$$-* || true
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

rx_packets() {
    ip netns exec "$NS_RX" cat /sys/class/net/tbrx$$/statistics/rx_packets
}

metric() { # name -> value (sum of the samples with that name)
    ip netns exec "$NS_RX" curl -s -m 5 http://127.0.0.1:9187/metrics |
        awk -v n="$1" '$1 == n { s += $2 } END { printf "%d\n", s }'
}

best=0
SPOOL_ROOT="${SPOOL:-$WORK}"
# PIN=1: taprec on CPU 1, the sender (and the kernel's receive path, which
# runs in the sender's context on a veth) on CPU 0.
RX_CPU=() TX_CPU=()
if [ "${PIN:-0}" = 1 ]; then RX_CPU=(taskset -c 1) TX_CPU=(taskset -c 0); fi
row="%10s %12s %9s %9s %9s %9s %10s %8s %9s\n"
printf "$row" "target_pps" "achieved_pps" "sent" "arrived" "captured" "kern_drop" "queue_drop" "lag" "recorded"
for rate in "${RATES[@]}"; do
    # A new spool per rate, all removed at exit: removing thousands of files
    # just before creating thousands more makes inode allocation on an ext4
    # without a journal skip every recently deleted inode, milliseconds per
    # file, which would be charged to the recorder.
    SPOOL_DIR="$SPOOL_ROOT/spool-$$-$rate"
    rm -rf "$SPOOL_DIR"
    ip netns exec "$NS_RX" "${RX_CPU[@]}" "$TAPREC" run --interface tbrx$$ --spool "$SPOOL_DIR" --no-upload \
        --buffer-mib "$BUFFER_MIB" --queue-packets "$QUEUE" --metrics-listen 127.0.0.1:9187 --log-level warn \
        2>"$WORK/taprec.log" &
    TAPREC_PID=$!
    for _ in $(seq 1 100); do
        [ "$(ip netns exec "$NS_RX" curl -s -m 1 http://127.0.0.1:9187/health || true)" = "ok" ] && break
        sleep 0.1
    done
    rx0=$(rx_packets)
    if [ "$GEN" = tcpreplay ]; then
        out=$(ip netns exec "$NS_TX" tcpreplay -K --pps "$rate" -i tbtx$$ "$PCAP" 2>&1)
        PACKETS=$(echo "$out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' | head -1)
        secs=$(echo "$out" | sed -n 's/.*packets ([0-9]* bytes) sent in \([0-9.]*\) seconds.*/\1/p' | head -1)
    else
        out=$(ip netns exec "$NS_TX" "${TX_CPU[@]}" "$SENDER" tbtx$$ "$PCAP" "$rate" 2>&1)
        PACKETS=$(echo "$out" | sed -n 's/^sent \([0-9]*\) .*/\1/p')
        secs=$(echo "$out" | sed -n 's/.* seconds \([0-9.]*\) .*/\1/p')
    fi
    arrived=$(( $(rx_packets) - rx0 ))
    achieved=$(awk -v n="$arrived" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%d", n / s; else print "?" }')
    lag=$(( $(metric taprec_captured_packets_total) - $(metric taprec_queue_dropped_packets_total) - $(metric taprec_decoded_frames_total) ))
    # Let the recorder drain the ring and the queue, and the calls time out.
    for _ in $(seq 1 60); do
        sleep 1
        [ "$(metric taprec_active_calls)" -eq 0 ] && break
    done
    captured=$(metric taprec_captured_packets_total)
    kdrop=$(metric taprec_kernel_dropped_packets_total)
    qdrop=$(metric taprec_queue_dropped_packets_total)
    recorded=$(metric taprec_recordings_written_total)
    kill -TERM "$TAPREC_PID"
    wait "$TAPREC_PID" || echo "taprec exited non-zero at $rate pps" >&2
    TAPREC_PID=""
    printf "$row" "$rate" "${achieved:-?}" "${PACKETS:-?}" "$arrived" "$captured" "$kdrop" "$qdrop" "$lag" "$recorded"
    if [ "$kdrop" -eq 0 ] && [ "$qdrop" -eq 0 ] && [ "$captured" -ge "${PACKETS:-0}" ]; then
        a=${achieved%.*}
        [ "${a:-0}" -gt "$best" ] && best=$a
    fi
done
echo "highest rate with zero kernel and queue drops and every packet captured: ${best} packets/s"
