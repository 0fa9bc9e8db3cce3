#!/usr/bin/env bash
# What the guard costs: the server's CPU while a banned source sends N datagrams per second
# (default 50,000), against the same server idle, in the same run. The flood is a SIP OPTIONS
# datagram sent by a paced Python sender (plain sendto); the server's CPU comes from
# /proc/<pid>/stat (utime+stime) over the measuring window.
#   bench/guard.sh [RATE] [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATE="${1:-50000}"
SECS="${2:-10}"
WORK="$(mktemp -d /tmp/sambung-guard-bench.XXXXXX)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# SAMBUNG_BIN: a binary already built (else the release binary is built here).
if [ -n "${SAMBUNG_BIN:-}" ]; then
  SAMBUNG=$SAMBUNG_BIN
else
  (cd "$ROOT" && cargo build --release -p sambung-server --bin sambung -j 2 >/dev/null 2>&1)
  SAMBUNG="${CARGO_TARGET_DIR:-$ROOT/target}/release/sambung"
fi
cat > "$WORK/sambung.toml" <<EOT
data_dir = "$WORK/data"
[log]
level = "warn"
[listen]
udp = ["127.0.0.1:25060"]
tcp = []
tls = []
ws = []
wss = []
[media]
address = "127.0.0.1"
rtp_port_min = 26000
rtp_port_max = 26100
EOT
"$SAMBUNG" serve --config "$WORK/sambung.toml" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 50); do grep -q "Sambung is ready" "$WORK/server.log" && break; sleep 0.1; done
"$SAMBUNG" ban add 127.0.0.99 --config "$WORK/sambung.toml" >/dev/null
sleep 2 # the server reloads the bans within a second

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
tick=$(getconf CLK_TCK)
measure() { # label, command...
  local label=$1; shift
  local t0 c0 t1 c1
  "$@" &
  local load=$!
  sleep 1
  t0=$(date +%s.%N); c0=$(cpu)
  sleep "$SECS"
  t1=$(date +%s.%N); c1=$(cpu)
  kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
  python3 -c "import sys; c=(float(sys.argv[2])-float(sys.argv[1]))/float(sys.argv[5]); w=float(sys.argv[4])-float(sys.argv[3]); print(f'{sys.argv[6]:>28}: server CPU {100*c/w:5.1f} % of a core')" "$c0" "$c1" "$t0" "$t1" "$tick" "$label"
}
flood() { # rate from address
  exec python3 - "$1" "$2" <<'PY'
import socket, sys, time
rate, source = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 0))
msg = (b"OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + source.encode() +
       b":5099;branch=z9hG4bKflood\r\nMax-Forwards: 70\r\nTo: <sip:bench@127.0.0.1>\r\n"
       b"From: <sip:flood@127.0.0.1>;tag=1\r\nCall-ID: flood\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
dst = ("127.0.0.1", 25060)
sent, start = 0, time.monotonic()
while True:
    due = int((time.monotonic() - start) * rate)
    while sent < due:
        s.sendto(msg, dst)
        sent += 1
    time.sleep(0.001)
PY
}
idle() { sleep 100000; }
echo "guard bench: $RATE datagrams/s for ${SECS}s, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
measure "idle" idle
measure "$RATE/s from a banned source" flood "$RATE" 127.0.0.99
# What the flood would cost without the ban: the same datagrams from an address that is not
# banned, with the rate limit off, answered (parsed, a 200 OK sent) by call control.
"$SAMBUNG" ban remove 127.0.0.99 --config "$WORK/sambung.toml" >/dev/null
kill "$PID"; wait "$PID" 2>/dev/null || true
printf '[guard]\nrate = 0\n' >> "$WORK/sambung.toml"
"$SAMBUNG" serve --config "$WORK/sambung.toml" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 50); do grep -q "Sambung is ready" "$WORK/server.log" && break; sleep 0.1; done
measure "$RATE/s answered (no guard)" flood "$RATE" 127.0.0.99
