#!/usr/bin/env bash
# Benchmark: Sambung against Kamailio, one after the other on udp:127.0.0.1:5060, under the same
# SIPp load steps (../shared/bench/bench.py), and the ratio of the two. Run by hand, unattended:
#
#   bench/run.sh                       # everything, default steps
#   BENCH_USERS=2000 BENCH_DURATION=15 bench/run.sh
#
# What it measures, for each server:
#   reg_auth  REGISTER -> 401 -> REGISTER with digest -> 200, per second
#   call      INVITE -> 407 -> ACK -> INVITE with digest -> 180 -> 200 -> ACK -> BYE -> 200, per
#             second (Sambung challenges every INVITE, so Kamailio is made to as well: like for
#             like), callee registered at the SIPp UAS
# at increasing rates; a step passes when fewer than 0.1% of its calls fail and SIPp achieved at
# least 90% of the asked rate. The figure is the highest passing rate (achieved).
#
# Environment (all optional):
#   BENCH_USERS      accounts user1..userN in both servers (default 1000; `sambung user add`
#                    takes a while per account, see below)
#   BENCH_DURATION   seconds per load step (default 10)
#   REG_RATES        reg_auth rates to try, ascending (default "1000 2000 ... 24000")
#   CALL_RATES       call rates to try, ascending (default "100 200 ... 3000")
#   KAM_CHILDREN     Kamailio UDP workers (default 4)
#   SAMBUNG_SHARDS   Sambung's call-control shards ([limits] shards; default 0: one per core)
#   BENCH_ONLY       "sambung" or "kamailio" to run one side only
#   BENCH_WORKDIR    where to put everything (default: a new /tmp/sambung-bench.XXXXXX, kept)
#   BENCH_DATABASE_URL  Sambung's store ([database] url), e.g. postgres://sambung@127.0.0.1:5432/sambung
#                    for the figures on PostgreSQL (an empty database: the schema is made at start);
#                    default: SQLite in the work directory
#
# Users: the kit's gen-users.sh and gen-subscriber.sh make user1..userN with password pwN;
# Sambung's CLI refuses passwords shorter than 8 characters, so both files are rewritten to
# "bench-secret-N" (same for both servers) and Sambung's accounts are made with one
# `sambung user add` per user.
#
# Every process this script starts (sambung, kamailio, and through bench.py the SIPp processes) is
# stopped by its PID on exit, also on error or Ctrl-C. All traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
USERS=${BENCH_USERS:-1000}
DURATION=${BENCH_DURATION:-10}
REG_RATES=${REG_RATES:-"1000 2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 24000"}
CALL_RATES=${CALL_RATES:-"100 200 300 400 600 800 1000 1200 1500 2000 2500 3000"}
KAM_CHILDREN=${KAM_CHILDREN:-4}
ONLY=${BENCH_ONLY:-}
WORK=${BENCH_WORKDIR:-$(mktemp -d /tmp/sambung-bench.XXXXXX)}
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
PASSWORD_PREFIX=bench-secret-

log() { printf '==> %s\n' "$*" >&2; }

# --- processes we started, stopped on exit ------------------------------------------------------
SERVER_PID=""
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------------
PACKAGES=("sipp:sip-tester" "kamailio:kamailio" "python3:python3" "taskset:util-linux")
missing=()
for entry in "${PACKAGES[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -f "$KIT/bench.py" ] || { echo "no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }

# 127.0.0.1:5060 must be free (UDP), and SIPp's 5061 and 5070.
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}
for port in 5060 5061 5070; do
  port_free "$port" || { echo "udp 127.0.0.1:$port is in use: stop whatever holds it first" >&2; exit 1; }
done

# Waits until something answers OPTIONS on udp 127.0.0.1:5060.
wait_sip() {
  python3 - <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.2)
port = s.getsockname()[1]
deadline = time.time() + 30
n = 0
while time.time() < deadline:
    n += 1
    msg = ("OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ready{n};rport\r\n"
           "Max-Forwards: 70\r\nTo: <sip:127.0.0.1:5060>\r\n"
           f"From: <sip:bench@127.0.0.1>;tag=ready{n}\r\nCall-ID: ready-{n}\r\nCSeq: {n} OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", 5060))
    try:
        s.recvfrom(65535)
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit("nothing answers OPTIONS on 127.0.0.1:5060")
PY
}

# --- the kit, copied (../shared is read-only) ----------------------------------------------------
log "work directory: $WORK"
rm -rf "$WORK/kit"
cp -r "$KIT" "$WORK/kit"
chmod -R u+w "$WORK/kit"
# bench.py's "call" mode runs uac.xml from its own directory: the challenged-INVITE caller.
cp "$ROOT/bench/uac_auth.xml" "$WORK/kit/uac.xml"
# Kamailio challenges INVITEs as well as REGISTERs (pv_auth_check answers 407 for non-REGISTER).
python3 - "$WORK/kit/kamailio.cfg" <<'PY'
import sys
path = sys.argv[1]
cfg = open(path).read()
old = '#!ifdef WITH_AUTH_HT\n\tif (is_method("REGISTER")) {\n\t\tif (!pv_auth_check('
new = '#!ifdef WITH_AUTH_HT\n\tif (is_method("REGISTER|INVITE")) {\n\t\tif (!pv_auth_check('
assert cfg.count(old) == 1, "kamailio.cfg changed: cannot make it challenge INVITE"
open(path, "w").write(cfg.replace(old, new))
PY

bench_passwords() { sed -E "s/\\bpw([0-9]+)\\b/${PASSWORD_PREFIX}\\1/g"; }
"$WORK/kit/gen-users.sh" "$USERS" 127.0.0.1 127.0.0.1:5070 | bench_passwords > "$WORK/users.csv"
"$WORK/kit/gen-subscriber.sh" "$USERS" "$WORK/kit/dbtext-run" >/dev/null
for table in subscriber htable; do
  bench_passwords < "$WORK/kit/dbtext-run/$table" > "$WORK/kit/dbtext-run/$table.new"
  mv "$WORK/kit/dbtext-run/$table.new" "$WORK/kit/dbtext-run/$table"
done

# On-CPU nanoseconds of PID, all its threads and all its descendants (/proc/*/task/*/schedstat).
# bench.py reads /proc/PID/schedstat, which covers only a process's main thread: right for
# Kamailio's worker processes, near zero for Sambung's threads. Both are measured this way too.
cpu_ns() {
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
kids = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
            kids.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
        except (OSError, ValueError):
            pass
total, todo = 0, [root]
while todo:
    p = todo.pop()
    todo.extend(kids.get(p, []))
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                total += int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
            except (OSError, ValueError):
                pass
    except OSError:
        pass
print(total)
PY
}

# --- one load step; prints the JSON line and returns 0 when the step passed ---------------------
step() {
  local label=$1 mode=$2 rate=$3 pid=$4 duration=${5:-$DURATION}
  shift 5 2>/dev/null || shift $#
  local line cpu0 cpu1 t0 t1
  cpu0=$(cpu_ns "$pid"); t0=$(date +%s.%N)
  line=$(python3 "$WORK/kit/bench.py" "$mode" --rate "$rate" --duration "$duration" --sut-pid "$pid" \
    --users "$WORK/users.csv" --workdir "$WORK/sipp" --out "$RESULTS" --label "$label" "$@") || {
    echo "bench.py $mode at $rate failed" >&2
    return 1
  }
  cpu1=$(cpu_ns "$pid"); t1=$(date +%s.%N)
  python3 - "$line" "$rate" "$cpu0" "$cpu1" "$t0" "$t1" "$WORK/cpu.jsonl" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); rate = float(sys.argv[2])
cpu = 100.0 * (int(sys.argv[4]) - int(sys.argv[3])) / 1e9 / (float(sys.argv[6]) - float(sys.argv[5]))
with open(sys.argv[7], "a") as f:
    f.write(json.dumps({"label": r["label"], "mode": r["mode"], "target_rate": r["target_rate"],
                        "server_cpu_pct_all_threads_step_avg": round(cpu, 1)}) + "\n")
ok = r["fail_pct"] is not None and r["fail_pct"] < 0.1 and (r["achieved_rate"] or 0) >= 0.9 * rate
print(f'    {r["label"]:9} {r["mode"]:8} rate {rate:>7.0f}: achieved {r["achieved_rate"]:>8}/s  '
      f'failed {r["failed"]:>6} ({r["fail_pct"]}%)  retrans {r["retransmissions"]:>6}  '
      f'server CPU {cpu:.0f}% of a core (step average, all threads)  {"ok" if ok else "FAIL"}',
      file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

# Runs `mode` at each rate until a step fails.
ramp() {
  local label=$1 mode=$2 pid=$3 rates=$4
  for rate in $rates; do
    step "$label" "$mode" "$rate" "$pid" || break
    kill -0 "$pid" 2>/dev/null || { echo "$label died" >&2; return 1; }
  done
}

# Registers every user once at the UAS address, so that calls find them. The REGISTERs are sent
# from the UAS's own port (5070): a server that routes to the address a REGISTER came from rather
# than to its Contact (Sambung does, for phones behind NAT) then reaches the UAS as well.
register_all() {
  local label=$1 pid=$2 rate=500
  local duration=$(( (USERS + rate - 1) / rate ))
  step "$label-prereg" reg_auth "$rate" "$pid" "$duration" --uac-port 5070 || echo "pre-registration had failures" >&2
}

run_series() {
  local label=$1 pid=$2
  log "$label: reg_auth"
  ramp "$label" reg_auth "$pid" "$REG_RATES" || true
  log "$label: call"
  register_all "$label" "$pid"
  ramp "$label" call "$pid" "$CALL_RATES" || true
}

# --- Sambung ----------------------------------------------------------------------------------------
if [ "$ONLY" != kamailio ]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release -p sambung-server --bin sambung -j 2)
  SAMBUNG=${CARGO_TARGET_DIR:-$ROOT/target}/release/sambung
  cat > "$WORK/sambung.toml" <<EOF
realm = "127.0.0.1"
data_dir = "$WORK/sambung-data"
[log]
level = "warn"
[listen]
udp = ["127.0.0.1:5060"]
tcp = []
tls = []
ws = []
wss = []
[limits]
shards = ${SAMBUNG_SHARDS:-0}
[media]
address = "127.0.0.1"
# The load comes from one address at rates no phone sends: like Kamailio's configuration here
# (no pike), the guard's limits are off for it; the guard still looks at every datagram.
[guard]
trusted = ["127.0.0.0/8"]
[fraud]
max_concurrent_calls = 0
max_calls_per_minute = 0
EOF
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    printf '[database]\nurl = "%s"\n' "$BENCH_DATABASE_URL" >> "$WORK/sambung.toml"
  fi
  rm -rf "$WORK/sambung-data"
  log "creating $USERS accounts with \`sambung user add\`"
  start=$(date +%s.%N)
  for i in $(seq 1 "$USERS"); do
    "$SAMBUNG" user add "user$i" --password "$PASSWORD_PREFIX$i" --config "$WORK/sambung.toml" >/dev/null
  done
  end=$(date +%s.%N)
  python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); \
print(f'    {n} accounts in {t:.1f} s ({1000 * t / n:.1f} ms each)', file=sys.stderr)" "$USERS" "$start" "$end"

  "$SAMBUNG" serve --config "$WORK/sambung.toml" >"$WORK/sambung.log" 2>&1 &
  SERVER_PID=$!
  wait_sip || { tail -20 "$WORK/sambung.log" >&2; exit 1; }
  log "Sambung running (PID $SERVER_PID)"
  run_series sambung "$SERVER_PID"
  stop_pid "$SERVER_PID"
  SERVER_PID=""
fi

# --- Kamailio ---------------------------------------------------------------------------------------
if [ "$ONLY" != sambung ]; then
  log "starting Kamailio ($KAM_CHILDREN workers, digest auth from an in-memory table)"
  SERVER_PID=$(LOG="$WORK/kamailio.log" "$WORK/kit/run-kamailio.sh" "$KAM_CHILDREN" -A WITH_AUTH_HT)
  wait_sip || { tail -20 "$WORK/kamailio.log" >&2; exit 1; }
  log "Kamailio running (PID $SERVER_PID)"
  run_series kamailio "$SERVER_PID"
  stop_pid "$SERVER_PID"
  SERVER_PID=""
fi

# --- summary ----------------------------------------------------------------------------------------
python3 - "$RESULTS" "$USERS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpus = {}
try:
    for l in open(sys.argv[1].replace("results.jsonl", "cpu.jsonl")):
        c = json.loads(l)
        cpus[(c["label"], c["mode"], c["target_rate"])] = c["server_cpu_pct_all_threads_step_avg"]
except OSError:
    pass
best = {}
for r in rows:
    label = r["label"]
    if label.endswith("-prereg"):
        continue
    ok = r["fail_pct"] is not None and r["fail_pct"] < 0.1 and (r["achieved_rate"] or 0) >= 0.9 * r["target_rate"]
    if ok:
        key = (label, r["mode"])
        if r["achieved_rate"] > best.get(key, (0, None))[0]:
            best[key] = (r["achieved_rate"], r)
print()
print(f"Highest rate with < 0.1% failures ({sys.argv[2]} users, loopback, SIPp on the same 2 cores):")
names = {"reg_auth": "REGISTER with digest auth /s", "call": "calls /s (INVITE challenged)"}
for mode in ("reg_auth", "call"):
    s = best.get(("sambung", mode), (None, None))[0]
    k = best.get(("kamailio", mode), (None, None))[0]
    ratio = f"{s / k:.2f}" if s and k else "-"
    cpu = lambda v: f' ({cpus.get((v[1]["label"], v[1]["mode"], v[1]["target_rate"]), "?")}% CPU)' if v[1] else ""
    print(f"  {names[mode]:30} Sambung {s or '-':>8}{cpu(best.get(('sambung', mode), (0, None)))}"
          f"   Kamailio {k or '-':>8}{cpu(best.get(('kamailio', mode), (0, None)))}   Sambung/Kamailio {ratio}")
print(f"\nall steps: {sys.argv[1]}")
PY
