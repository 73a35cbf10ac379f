#!/usr/bin/env bash
# Installs what the tests need and runs every test (the README's second command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# The real servers the tests run against (Debian packages; the tests start them on 127.0.0.1
# ports they choose and stop them). Install only what is missing, so a rerun costs nothing.
missing=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Unit, behaviour, compile (trybuild) and doc tests of the whole workspace.
cargo test --workspace

# The runtime crate alone builds with no optional feature, its defaults (no OTLP) and OTLP alone
# (the workspace build above unifies every feature on).
cargo check -q -p flext-obs --no-default-features
cargo check -q -p flext-obs
cargo check -q -p flext-obs --no-default-features --features otlp

# With monitoring compiled out, #[flext_monitor] must leave items unchanged.
cargo test -p flext-obs-tests --features disable-monitoring --test disabled

# The README's first command must keep working: run the examples and check they succeed.
FLEXT_METRICS_ADDR=127.0.0.1:0 cargo run -q -p flext-obs-examples --example service -- --seconds 1 > /dev/null
echo "example service: ok"
cargo run -q -p flext-obs-examples --example quickstart > /dev/null
echo "example quickstart: ok"
# Checks itself: exits non-zero unless its collector received the 6 spans of the upstream trace.
env -u OTEL_EXPORTER_OTLP_ENDPOINT cargo run -q -p flext-obs-examples --example traced_request > /dev/null
echo "example traced_request: ok"
