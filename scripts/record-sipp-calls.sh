#!/usr/bin/env bash
# record-sipp-calls.sh — make a real SIP+RTP capture of SIPp calls on loopback.
#
# A SIPp caller (UAC) on 127.0.1.10 calls a SIPp callee (UAS) on 127.0.2.20.
# Each side streams its own sine tone (raw G.711 made with sox) as RTP, so a
# recorder's output can be checked channel by channel:
#   caller "Alice Caller" <sip:1001@127.0.1.10>  sends a 500 Hz tone
#   callee                <sip:5551234@127.0.2.20> sends a 1200 Hz tone
# With -n N, call i (0-based) uses caller 127.0.1.(10+i) with 500+30*i Hz and
# callee 127.0.2.(20+i) with 1200+60*i Hz (see below), one SIPp pair per call.
# The caller talks for -d seconds after the ACK, then sends BYE.
# tcpdump captures everything on `lo` to/from 127.0.1.0/24 and 127.0.2.0/24.
#
# Needs root (or CAP_NET_RAW for tcpdump on lo). Installs sip-tester, tcpdump
# and sox with apt-get when they are missing. Every step is bounded in time
# (`timeout`), so the script never hangs; it exits non-zero when SIPp reports
# a failed call or the capture is empty.
#
# Usage: scripts/record-sipp-calls.sh [-c pcmu|pcma] [-n CALLS] [-t udp|tcp]
#                                     [-d TALK_SECONDS] [-o OUT.pcap] [-k]
#   -c  codec (default pcmu: PT 0; pcma: PT 8)
#   -n  number of concurrent calls (default 1; all start within ~0.5 s, each
#       between its own SIPp pair, with its own addresses and tones)
#   -t  SIP transport (default udp; tcp uses SIPp `-t t1`). RTP is always UDP.
#   -d  talk time in seconds between ACK and BYE (default 5)
#   -o  output capture (default ./sipp-<codec>.pcap)
#   -k  keep the work directory (tones, rendered scenarios, SIPp logs)
# A sidecar OUT.json beside the capture records tones, addresses, numbers
# and the exact commands used.
set -euo pipefail

CODEC=pcmu
CALLS=1
TRANSPORT=udp
TALK=5
OUT=""
KEEP=0
while getopts "c:n:t:d:o:kh" opt; do
    case "$opt" in
        c) CODEC=$OPTARG ;;
        n) CALLS=$OPTARG ;;
        t) TRANSPORT=$OPTARG ;;
        d) TALK=$OPTARG ;;
        o) OUT=$OPTARG ;;
        k) KEEP=1 ;;
        h) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "bad option; -h for help" >&2; exit 2 ;;
    esac
done

case "$CODEC" in
    pcmu) PT=0; RTPMAP=PCMU; ENC=mu-law ;;
    pcma) PT=8; RTPMAP=PCMA; ENC=a-law ;;
    *) echo "codec must be pcmu or pcma" >&2; exit 2 ;;
esac
case "$TRANSPORT" in
    udp) TFLAG=u1 ;;
    tcp) TFLAG=t1 ;;
    *) echo "transport must be udp or tcp" >&2; exit 2 ;;
esac
[[ "$CALLS" =~ ^[1-9][0-9]*$ ]] || { echo "-n needs a positive integer" >&2; exit 2; }
[[ "$TALK" =~ ^[1-9][0-9]*$ ]] || { echo "-d needs a positive integer" >&2; exit 2; }
[ -n "$OUT" ] || OUT="$PWD/sipp-$CODEC.pcap"

# Call i (0-based) runs between its own pair of SIPp processes:
#   caller 127.0.1.(10+i):5061, number 1001, display name "Alice Caller",
#          tone 500+30*i Hz (500..1070 Hz for 20 calls)
#   callee 127.0.2.(20+i):5060, number 5551234,
#          tone 1200+60*i Hz (1200..2340 Hz for 20 calls)
# SIPp 3.6.1 gives every call of one process the same RTP port (6000) and the
# same SSRC sequence, so concurrent calls inside one SIPp process could not be
# told apart by address; one process pair per call gives each call its own
# addresses and its own tones. Every caller tone is below every callee tone.
CALLER_NET=127.0.1
CALLEE_NET=127.0.2
CALLER_SIP_PORT=5061
CALLEE_SIP_PORT=5060
CALLER_NUM=1001
CALLER_NAME="Alice Caller"
CALLEE_NUM=5551234
caller_ip() { echo "$CALLER_NET.$((10 + $1))"; }
callee_ip() { echo "$CALLEE_NET.$((20 + $1))"; }
caller_hz() { echo $((500 + 30 * $1)); }
callee_hz() { echo $((1200 + 60 * $1)); }
[ "$CALLS" -le 100 ] || { echo "at most 100 calls" >&2; exit 2; }
TALK_MS=$((TALK * 1000))
# The tone files run one second longer than the talk time, so both sides are
# still sending when the BYE ends the call (SIPp stops a stream at call end).
TONE_SECS=$((TALK + 1))
# Upper bound for any one SIPp run: each call lasts TALK seconds plus signalling.
LIMIT=$((TALK + 20))

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}"
    fi
}
need sipp:sip-tester tcpdump:tcpdump sox:sox

if [ "$(id -u)" -ne 0 ]; then
    echo "warning: not root; tcpdump on lo needs CAP_NET_RAW" >&2
fi

WORK="$(mktemp -d /tmp/sipp-calls.XXXXXX)"
TCPDUMP_PID=""
UAS_PIDS=()
UAC_PIDS=()
cleanup() {
    # Stop only what this script started, by process id.
    for pid in "${UAC_PIDS[@]}" "${UAS_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "$TCPDUMP_PID" ] && kill -INT "$TCPDUMP_PID" 2>/dev/null || true
    if [ "$KEEP" -eq 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

render() { # template tone output
    sed -e "s|@PT@|$PT|g" -e "s|@CODEC@|$RTPMAP|g" -e "s|@TONE@|$2|g" \
        -e "s|@TALK_MS@|$TALK_MS|g" -e "s|@CALLER@|$CALLER_NUM|g" \
        -e "s|@CALLER_NAME@|$CALLER_NAME|g" -e "s|@CALLEE@|$CALLEE_NUM|g" "$1" >"$3"
}

# Per call: tones (raw G.711 of the chosen law, 8 kHz mono, half full scale)
# and rendered scenarios.
for ((i = 0; i < CALLS; i++)); do
    sox -n -r 8000 -c 1 -e "$ENC" -t raw "$WORK/caller$i.raw" synth "$TONE_SECS" sine "$(caller_hz $i)" vol 0.5
    sox -n -r 8000 -c 1 -e "$ENC" -t raw "$WORK/callee$i.raw" synth "$TONE_SECS" sine "$(callee_hz $i)" vol 0.5
    render "$HERE/sipp/uac.xml.in" "$WORK/caller$i.raw" "$WORK/uac$i.xml"
    render "$HERE/sipp/uas.xml.in" "$WORK/callee$i.raw" "$WORK/uas$i.xml"
done

mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
rm -f "$OUT"

FILTER="net $CALLER_NET.0/24 or net $CALLEE_NET.0/24"
timeout $((LIMIT * 2 + 30)) tcpdump -i lo -U -n -w "$OUT" "$FILTER" 2>"$WORK/tcpdump.log" &
TCPDUMP_PID=$!
# Wait (bounded) until tcpdump is listening.
for _ in $(seq 1 50); do
    grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log" >&2; exit 1; }

uas_cmd() {
    echo sipp -sf "uas$1.xml" -t "$TFLAG" -i "$(callee_ip "$1")" -p "$CALLEE_SIP_PORT" \
        -mi "$(callee_ip "$1")" -m 1 -nostdin -timeout "${LIMIT}s" -timeout_error -trace_err
}
uac_cmd() {
    echo sipp "$(callee_ip "$1"):$CALLEE_SIP_PORT" -sf "uac$1.xml" -t "$TFLAG" \
        -i "$(caller_ip "$1")" -p "$CALLER_SIP_PORT" -mi "$(caller_ip "$1")" -m 1 \
        -nostdin -timeout "${LIMIT}s" -timeout_error -trace_err
}

for ((i = 0; i < CALLS; i++)); do
    # shellcheck disable=SC2046 # the words are fixed, no globbing characters
    (cd "$WORK" && exec timeout $((LIMIT + 5)) $(uas_cmd $i) >"uas$i.out" 2>&1) &
    UAS_PIDS+=($!)
done
sleep 0.5
for ((i = 0; i < CALLS; i++)); do
    # shellcheck disable=SC2046
    (cd "$WORK" && exec timeout $((LIMIT + 5)) $(uac_cmd $i) >"uac$i.out" 2>&1) &
    UAC_PIDS+=($!)
done
failed=0
for pid in "${UAC_PIDS[@]}" "${UAS_PIDS[@]}"; do
    wait "$pid" || failed=$((failed + 1))
done
UAS_PIDS=()
UAC_PIDS=()
# tcpdump can lag behind when many SIPp processes share two cores, and it drops
# what it has not yet written when it is stopped: wait (bounded) until the
# capture file stops growing, then stop tcpdump cleanly with SIGINT.
last=-1
for _ in $(seq 1 60); do
    sleep 0.5
    size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
    [ "$size" -eq "$last" ] && break
    last=$size
done
kill -INT "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=""

if [ "$failed" -ne 0 ]; then
    echo "SIPp failed: $failed of $((2 * CALLS)) SIPp processes exited non-zero" >&2
    tail -n 20 "$WORK"/uac*.out "$WORK"/uas*.out >&2 || true
    cat "$WORK"/*errors.log >&2 2>/dev/null || true
    exit 1
fi
[ -s "$OUT" ] || { echo "empty capture $OUT" >&2; exit 1; }
if ! grep -q "^0 packets dropped by kernel" "$WORK/tcpdump.log"; then
    echo "tcpdump dropped packets:" >&2; cat "$WORK/tcpdump.log" >&2; exit 1
fi
captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$WORK/tcpdump.log")
received=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$WORK/tcpdump.log")
echo "tcpdump: $captured packets captured ($received received by the filter: on lo it sees each packet twice)" >&2

# Sidecar: what is in the capture and how it was made.
SIDECAR="${OUT%.*}.json"
{
    echo "{"
    echo "  \"capture\": \"$(basename "$OUT")\","
    echo "  \"made_by\": \"scripts/record-sipp-calls.sh -c $CODEC -n $CALLS -t $TRANSPORT -d $TALK -o $(basename "$OUT")\","
    echo "  \"sipp_version\": \"$(sipp -v 2>&1 | grep -o 'v[0-9][^ ]*' | head -n1)\","
    echo "  \"codec\": \"$RTPMAP\", \"payload_type\": $PT, \"sip_transport\": \"$TRANSPORT\","
    echo "  \"talk_seconds\": $TALK,"
    echo "  \"caller\": {\"number\": \"$CALLER_NUM\", \"display_name\": \"$CALLER_NAME\", \"sip_port\": $CALLER_SIP_PORT, \"rtp_port\": 6000},"
    echo "  \"callee\": {\"number\": \"$CALLEE_NUM\", \"sip_port\": $CALLEE_SIP_PORT, \"rtp_port\": 6000},"
    echo "  \"tone_level\": \"sine at half full scale, a $TONE_SECS s file streamed once per side\","
    echo "  \"tcpdump\": \"tcpdump -i lo -U -n -w FILE '$FILTER'\","
    echo "  \"uac_command_call0\": \"$(uac_cmd 0)\","
    echo "  \"uas_command_call0\": \"$(uas_cmd 0)\","
    echo "  \"note\": \"one SIPp process pair per call; both directions of every call use SSRC 0xCA110000, so streams differ only by address\","
    echo "  \"calls\": ["
    for ((i = 0; i < CALLS; i++)); do
        sep=","
        [ $i -eq $((CALLS - 1)) ] && sep=""
        echo "    {\"caller_ip\": \"$(caller_ip $i)\", \"caller_tone_hz\": $(caller_hz $i), \"callee_ip\": \"$(callee_ip $i)\", \"callee_tone_hz\": $(callee_hz $i)}$sep"
    done
    echo "  ]"
    echo "}"
} >"$SIDECAR"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes) and $SIDECAR"
