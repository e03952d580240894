#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy and rustdoc (warnings are errors) and the whole
# test suite.
# Installs what the tests need when it is missing (Debian packages; needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use; crates add theirs here (redis-server, nginx, ...).
# ffmpeg: hive-manifest/tests/ffmpeg_ladders.rs generates HLS and DASH ladders with it.
# redis-server: hive-services/tests/store_conformance.rs runs the tracker store suite on Redis.
PACKAGES=(ffmpeg redis-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features --quiet
echo "== cargo test" >&2
cargo test --workspace --all-features
