#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy and rustdoc (warnings are errors), the facade's
# feature matrix and the whole workspace's test suite.
# Installs what the tests need when it is missing (Debian packages; needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use; crates add theirs here (redis-server, nginx, ...).
# ffmpeg: hive-manifest/tests/ffmpeg_ladders.rs generates HLS and DASH ladders with it.
# redis-server: hive-services/tests/store_conformance.rs runs the tracker store suite on Redis.
# iproute2: hive-cli/tests/lab.rs makes network namespaces and configures them with `ip`.
# chromium, nodejs: hive-cli/tests/browser.rs plays `hive demo`'s watch page in headless
# Chromium, driven by node (puppeteer-core, below).
PACKAGES=(ffmpeg redis-server iproute2 chromium nodejs)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm: NodeSource's nodejs package carries it, Debian's is a package of its own.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The browser tests' driver, puppeteer-core (no bundled browser), from its lock file.
if [ ! -d hive-cli/tests/browser/node_modules ]; then
    (cd hive-cli/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features --quiet
echo "== facade feature matrix" >&2
# The facade (the root package `hive`) with no features and with each feature alone: a missing
# `cfg` shows up here, not in the all-features runs above. Its examples with just the features
# they require, its docs with none. `cargo check` only, so it stays cheap: about 2 min on two
# cores after the runs above (feature sets they did not build: tokio, s2n-quic, redis, ...), 3 s
# once its own artifacts are in the target directory. The runs above lint and document the code.
features=$(awk '/^\[features\]/{f=1;next} /^\[/{f=0} f && /^[a-z0-9_-]+ *=/{print $1}' Cargo.toml | grep -vx default)
for f in "" $features; do
    echo "   hive --no-default-features ${f:+--features $f}" >&2
    cargo check --quiet -p hive --no-default-features ${f:+--features "$f"}
done
cargo check --quiet -p hive --no-default-features --features cc --example custom_cc
cargo check --quiet -p hive --no-default-features --features agent,services \
    --example embed_agent --example custom_policy
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p hive --no-default-features
echo "== cargo test" >&2
cargo test --workspace --all-features
