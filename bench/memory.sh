#!/usr/bin/env bash
# Memory benchmark: what Sambung keeps per binding, per held call and per completed transaction,
# and whether its memory comes back after load (a leak grows with every call; the allocator's
# high-water mark does not). Run by hand after bench/run.sh, on its work directory (its users,
# its configuration, its accounts in the store):
#
#   BENCH_ONLY=sambung BENCH_WORKDIR=/tmp/sb bench/run.sh   # once: accounts, kit, config
#   BENCH_WORKDIR=/tmp/sb bench/memory.sh
#
# Each phase starts a fresh server on a copy of the work directory's database without its
# bindings (memory-data/; run.sh's directory is left as it was), since memory an earlier phase
# left to the allocator would hide what the next one takes.
#
# Phases (RSS = VmRSS of the server; each figure printed and appended to memory.jsonl):
#   held        HELD_CALLS calls held open together (SIPp hold time), no RTP: per held call
#               at the peak, against the idle server with its devices registered
#   churn       CHURN_CALLS calls at CHURN_RATE per second (hold 0); then idle past every
#               transaction timer: the growth left behind; twice (a leak grows again, the
#               allocator's high-water mark does not)
#   bindings    BINDINGS_PER_USER registrations per user, each with a contact of its own, so
#               users x BINDINGS_PER_USER bindings; then idle past Timer J (32 s): per binding
# Environment: SAMBUNG_BIN (default: the release build), BINDINGS_PER_USER (100),
# CHURN_RATE (300), CHURN_CALLS (36000), HELD_CALLS (2400, under the 2,500 RTP port pairs of the
# default range: each call takes four ports).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORKDIR:?set BENCH_WORKDIR to the work directory of a bench/run.sh run}
SAMBUNG=${SAMBUNG_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sambung}
PER_USER=${BINDINGS_PER_USER:-100}
CHURN_RATE=${CHURN_RATE:-300}
CHURN_CALLS=${CHURN_CALLS:-36000}
HELD=${HELD_CALLS:-2400}
OUT=$WORK/memory.jsonl
for f in "$WORK/users.csv" "$WORK/sambung.toml" "$WORK/kit/bench.py"; do
  [ -e "$f" ] || { echo "$f missing: run bench/run.sh with BENCH_WORKDIR=$WORK first" >&2; exit 1; }
done
USERS=$(grep -c ';' "$WORK/users.csv" || true)

SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
record() {
  local phase=$1 rss; rss=$(rss_kb)
  printf '{"phase": "%s", "rss_kb": %s}\n' "$phase" "$rss" >> "$OUT"
  printf '    %-28s RSS %8.1f MB\n' "$phase" "$(echo "$rss / 1024" | bc -l)" >&2
  echo "$rss"
}
load() { python3 "$WORK/kit/bench.py" "$@" --sut-pid "$SERVER_PID" --users "$WORK/users.csv" \
  --workdir "$WORK/sipp-memory" --out "$OUT" --label memory >/dev/null; }

# A kit whose registrations each bind a contact of their own.
KIT=$WORK/kit-memory
rm -rf "$KIT"; cp -r "$WORK/kit" "$KIT"
sed -i 's|Contact: <sip:\[field0\]@\[field3\]>|Contact: <sip:[field0]-[call_number]@[field3]>|' "$KIT/reg_auth.xml"
grep -q 'call_number\]@' "$KIT/reg_auth.xml" || { echo "reg_auth.xml changed: cannot vary the contact" >&2; exit 1; }

rm -f "$OUT"
# A fresh server on a fresh copy of the accounts.
fresh_server() {
  cleanup
  SERVER_PID=""
  rm -rf "$WORK/memory-data"
  cp -r "$WORK/sambung-data" "$WORK/memory-data"
  python3 - "$WORK/memory-data/sambung.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM bindings")
db.commit()
PY
  sed "s|^data_dir = .*|data_dir = \"$WORK/memory-data\"|" "$WORK/sambung.toml" > "$WORK/memory.toml"
  "$SAMBUNG" serve --config "$WORK/memory.toml" >>"$WORK/memory-sambung.log" 2>&1 &
  SERVER_PID=$!
  sleep 3
}
register_devices() { load reg_auth --rate 500 --duration $(( (USERS + 499) / 500 )) --uac-port 5070; }

echo "==> $HELD held calls" >&2
fresh_server
register_devices
sleep 35
again=$(record held-before)
rate=100
load call --rate "$rate" --duration $((HELD / rate)) --hold $(( (HELD / rate + 15) * 1000 )) &
loader=$!
sleep $((HELD / rate + 5))
peak=$(record held-peak)
echo "    per held call: $(( (peak - again) * 1024 / HELD )) bytes" >&2
wait "$loader" || true
sleep 40
idle=$(record held-idle)

echo "==> churn: $CHURN_CALLS calls at $CHURN_RATE/s" >&2
fresh_server
register_devices
sleep 35
before=$(record churn-before)
load call --rate "$CHURN_RATE" --duration $((CHURN_CALLS / CHURN_RATE))
record churn-loaded >/dev/null
sleep 40
after=$(record churn-idle)
echo "    left behind by $CHURN_CALLS calls: $(( (after - before) / 1024 )) MB" >&2
load call --rate "$CHURN_RATE" --duration $((CHURN_CALLS / CHURN_RATE))
sleep 40
again=$(record churn-again-idle)
echo "    left behind by $CHURN_CALLS more: $(( (again - after) / 1024 )) MB" >&2

echo "==> $((USERS * PER_USER)) bindings" >&2
fresh_server
idle=$(record bindings-before)
python3 "$KIT/bench.py" reg_auth --rate 2000 --duration $((USERS * PER_USER / 2000)) --sut-pid "$SERVER_PID" \
  --users "$WORK/users.csv" --workdir "$WORK/sipp-memory" --out "$OUT" --label memory-bindings >/dev/null
record bindings-loaded >/dev/null
sleep 40
bound=$(record bindings-idle)
echo "    per binding: $(( (bound - idle) * 1024 / (USERS * PER_USER) )) bytes" >&2

echo "all figures: $OUT" >&2
