#!/usr/bin/env bash
# Installs what the tests need and runs every test (the README's second command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# Unit, behaviour and doc tests of the whole workspace.
cargo test --workspace

# The README's first command must keep working: run the main example and check it succeeds.
cargo run -q -p flext-obs-examples --example quickstart > /dev/null
echo "example quickstart: ok"
