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
)

missing=()
for entry in "${PACKAGES[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "==> installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Two cores are shared with other builds: keep the parallelism modest.
JOBS=2

echo "==> cargo fmt"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --build-jobs "$JOBS" --test-threads "$JOBS" --no-fail-fast
else
  cargo test --workspace -j "$JOBS" --no-fail-fast -- --test-threads "$JOBS"
fi

echo "==> doc tests"
cargo test --workspace --doc -j "$JOBS"
