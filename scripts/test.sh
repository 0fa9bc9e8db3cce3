#!/usr/bin/env bash
# Runs everything CI checks: formatting, lints, unit and integration tests (the integration
# tests run the built `sambung` binary against SIPp and other clients on 127.0.0.1), doc tests.
# Works as root on a fresh Debian 12 machine with the stable Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, as "command:package". Add new ones here.
PACKAGES=(
  "sipp:sip-tester"
  "openssl:openssl"
  # PostgreSQL: the store's tests and crates/server/tests/postgres.rs (a throwaway cluster, below)
  "pg_ctlcluster:postgresql"
  # tests/baresip.rs: a real softphone, speech made with espeak-ng and sox
  "baresip:baresip"
  # tests/transfer_attended.rs: Linphone's console client, a phone that does attended transfer
  # (baresip 1.0 has no Replaces)
  "linphonec:linphone-cli"
  "espeak-ng:espeak-ng"
  "sox:sox"
  # ../shared/tools/pesq-score makes a Python venv and builds the `pesq` package from source:
  # python3 with venv (python3-venv has no command of its own: it comes with python3-dev),
  # a C compiler and Python's headers
  "python3:python3"
  "python3-config:python3-dev"
  "python3-config:python3-venv"
  "gcc:gcc"
  # crates/media: the opus crate builds the libopus source it bundles with cmake, make and gcc
  # (make is only a recommendation of cmake's, which --no-install-recommends leaves out)
  "cmake:cmake"
  "make:make"
  # tests/media_baresip.rs: a capture of the relay's ports must hold only SRTP
  "tcpdump:tcpdump"
  # tests/web_browser.rs: the web app in a real, headless browser (driven by Playwright below;
  # Playwright never downloads a browser of its own here)
  "chromium:chromium"
)

missing=()
for entry in "${PACKAGES[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
# The attendant's office hours are read in IANA time zones, from the machine's tzdata (jiff)
[ -e /usr/share/zoneinfo/Europe/London ] || missing+=("tzdata")
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "==> installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# SIPVicious 0.3.8 from PyPI (sipvicious_svmap, sipvicious_svwar, sipvicious_svcrack): the attack
# tools crates/server/tests/guard.rs runs against the server, in a virtual environment of their
# own (python3-venv is among the packages above). The tests find them through SAMBUNG_SIPVICIOUS
# (the environment's bin directory), else on PATH, and fail when they are missing.
SIPVICIOUS_VERSION=0.3.8
SIPVICIOUS_VENV=${SAMBUNG_SIPVICIOUS_VENV:-$HOME/.cache/sambung-sipvicious}
sipvicious_ok() {
  "$SIPVICIOUS_VENV/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('sipvicious') != '$SIPVICIOUS_VERSION')" 2>/dev/null
}
if ! sipvicious_ok; then
  echo "==> installing sipvicious $SIPVICIOUS_VERSION in $SIPVICIOUS_VENV"
  rm -rf "$SIPVICIOUS_VENV"
  mkdir -p "$(dirname "$SIPVICIOUS_VENV")"
  python3 -m venv "$SIPVICIOUS_VENV"
  "$SIPVICIOUS_VENV/bin/pip" install -q "sipvicious==$SIPVICIOUS_VERSION"
  sipvicious_ok || { echo "sipvicious $SIPVICIOUS_VERSION did not install in $SIPVICIOUS_VENV" >&2; exit 1; }
fi
export SAMBUNG_SIPVICIOUS="$SIPVICIOUS_VENV/bin"

# Playwright for Python (drives Debian's chromium through executable_path) and
# openapi-spec-validator (checks /api/v1/openapi.json) for crates/server/tests/web_browser.rs,
# and prometheus-client (the Prometheus project's text-format parser, for /metrics in
# crates/server/tests/webhooks.rs), in a virtual environment of their own, named to the tests by
# SAMBUNG_PLAYWRIGHT_PYTHON.
PLAYWRIGHT_VERSION=1.65.0
OPENAPI_VALIDATOR_VERSION=0.9.0
PROMETHEUS_CLIENT_VERSION=0.26.0
PLAYWRIGHT_VENV=${SAMBUNG_PLAYWRIGHT_VENV:-$HOME/.cache/sambung-playwright}
playwright_ok() {
  "$PLAYWRIGHT_VENV/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('playwright') != '$PLAYWRIGHT_VERSION' or m.version('openapi-spec-validator') != '$OPENAPI_VALIDATOR_VERSION' \
or m.version('prometheus-client') != '$PROMETHEUS_CLIENT_VERSION')" 2>/dev/null
}
if ! playwright_ok; then
  echo "==> installing playwright $PLAYWRIGHT_VERSION, openapi-spec-validator and prometheus-client in $PLAYWRIGHT_VENV"
  rm -rf "$PLAYWRIGHT_VENV"
  mkdir -p "$(dirname "$PLAYWRIGHT_VENV")"
  python3 -m venv "$PLAYWRIGHT_VENV"
  "$PLAYWRIGHT_VENV/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION" "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION" \
    "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
  playwright_ok || { echo "playwright did not install in $PLAYWRIGHT_VENV" >&2; exit 1; }
fi
export SAMBUNG_PLAYWRIGHT_PYTHON="$PLAYWRIGHT_VENV/bin/python"

# PostgreSQL for the store's test suite (crates/store/tests), which runs once on SQLite and once
# on the database named by SAMBUNG_TEST_POSTGRES_URL, and for a whole call through the built
# binary on that database (crates/server/tests/postgres.rs, in a schema of its own). Unless that
# variable is already set, start a throwaway cluster on 127.0.0.1 (trust authentication, a
# password-less role `sambung` owning a database `sambung`) and stop it when this script exits.
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user that the
# Debian package creates.
PG_DIR=""
PG_BIN=""
PG_AS=()
stop_postgres() {
  if [ -n "$PG_DIR" ]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
start_postgres() {
  PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2
    return 1
  fi
  local port=55432
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  PG_DIR=$(mktemp -d /tmp/sambung-pg.XXXXXX)
  trap stop_postgres EXIT
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DIR"
    PG_AS=(runuser -u postgres --)
  fi
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=200" start >/dev/null ||
    { cat "$PG_DIR/server.log" >&2; return 1; }
  "${PG_AS[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE sambung LOGIN" -c "CREATE DATABASE sambung OWNER sambung" >/dev/null
  export SAMBUNG_TEST_POSTGRES_URL="postgres://sambung@127.0.0.1:$port/sambung"
  echo "==> PostgreSQL test cluster on 127.0.0.1:$port"
}
if [ -z "${SAMBUNG_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
fi
# Under this script (and so in CI) PostgreSQL is always there: crates/server/tests/postgres.rs
# (the built binary on PostgreSQL) fails instead of skipping when the URL is missing.
export SAMBUNG_REQUIRE_POSTGRES=1

# Two cores are shared with other builds: keep the parallelism modest.
JOBS=2

echo "==> cargo fmt"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings

# The cores are sans-IO: no async runtime among their dependencies, and clippy bans (each
# crate's clippy.toml, enforced by the clippy run above) on clocks, sockets and global
# randomness. A ban taken out of a clippy.toml fails here.
echo "==> sans-IO cores"
for crate in sambung-sip sambung-media sambung-pbx sambung-dns; do
  runtimes=$(cargo tree -p "$crate" -e normal --prefix none | grep -E '^(tokio|mio|async-std|smol|async-io) ' || true)
  if [ -n "$runtimes" ]; then
    echo "$crate must not depend on an async runtime:" >&2
    echo "$runtimes" >&2
    exit 1
  fi
done
for ban in 'std::time::Instant::now' 'std::time::SystemTime::now' 'std::net::UdpSocket' 'std::net::TcpStream' \
  'rand::random' 'rand::rng' 'rand::thread_rng'; do
  grep -q "\"$ban\"" crates/pbx/clippy.toml || { echo "crates/pbx/clippy.toml must ban $ban" >&2; exit 1; }
done

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --build-jobs "$JOBS" --test-threads "$JOBS" --no-fail-fast
else
  cargo test --workspace -j "$JOBS" --no-fail-fast -- --test-threads "$JOBS"
fi

echo "==> doc tests"
cargo test --workspace --doc -j "$JOBS"

# Every cargo-fuzz target (fuzz/, its own workspace) runs for a few seconds over its committed
# corpus, fuzz/corpus/<target>: a parser change that panics on a known input, or on one found
# quickly, fails here. New inputs go to a scratch directory, so the committed corpora stay as
# they are; a crash leaves its input in fuzz/artifacts/<target>/ and stops the script. Only the
# stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its sanitizer flags.
FUZZ_SECONDS="${SAMBUNG_FUZZ_SECONDS:-15}"
echo "==> fuzz (${FUZZ_SECONDS} s per target)"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
fuzz_scratch=$(mktemp -d /tmp/sambung-fuzz.XXXXXX)
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1
  CARGO_BUILD_JOBS="$JOBS" cargo fuzz build
  for target in $(cargo fuzz list); do
    mkdir -p "$fuzz_scratch/$target" "corpus/$target"
    log="$fuzz_scratch/$target.log"
    if ! cargo fuzz run "$target" "$fuzz_scratch/$target" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
      tail -n 80 "$log" >&2
      echo "fuzz target $target failed: its input is in fuzz/artifacts/$target/" >&2
      exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "    $target: ${runs:-?} runs, ${speed:-?}/s"
  done
)
rm -rf "$fuzz_scratch"
