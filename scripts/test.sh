#!/usr/bin/env bash
# Installs what the tests need and runs every test (the README's second command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# Unit, behaviour, compile (trybuild) and doc tests of the whole workspace.
cargo test --workspace

# With monitoring compiled out, #[flext_monitor] must leave items unchanged.
cargo test -p flext-obs-tests --features disable-monitoring --test disabled

# The README's first command must keep working: run the examples and check they succeed.
cargo run -q -p flext-obs-examples --example service -- --seconds 1 > /dev/null
echo "example service: ok"
cargo run -q -p flext-obs-examples --example quickstart > /dev/null
echo "example quickstart: ok"
