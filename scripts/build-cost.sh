#!/usr/bin/env bash
# Measures what #[flext_monitor] adds to build time: generates a crate with N functions (default
# 500), once plain and once with #[flext_monitor] on each, and times a release build of each
# crate alone (dependencies are built first and not counted). Prints seconds per 100 functions.
# Usage: bash scripts/build-cost.sh [N] [RUNS]
set -euo pipefail
n=${1:-500}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BUILD_COST_DIR:-$root/target/build-cost}
export CARGO_TARGET_DIR=$dir/target
mkdir -p "$dir"

generate() { # variant attribute
  local crate=$dir/$1
  mkdir -p "$crate/src"
  cat > "$crate/Cargo.toml" <<TOML
[package]
name = "build_cost_$1"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
flext-obs = { path = "$root/flext-obs" }

[workspace]
TOML
  {
    echo "use flext_obs as _;"
    for i in $(seq 1 "$n"); do
      [ -n "$2" ] && echo "$2"
      echo "#[inline(never)] pub fn f$i(x: u64) -> Result<u64, String> { if x == $i { return Err(format!(\"bad {}\", x)); } let y = x.checked_add($i).ok_or(\"overflow\")?; Ok(y) }"
    done
    echo "fn main() { let mut total = 0u64;"
    for i in $(seq 1 "$n"); do echo "  total = total.wrapping_add(f$i(std::hint::black_box(1)).unwrap_or(0));"; done
    echo "  println!(\"{total}\"); }"
  } > "$crate/src/main.rs"
}

time_build() { # variant -> best of $runs seconds
  local crate=$dir/$1 best=""
  (cd "$crate" && cargo build --release -q)  # dependencies, not timed
  for _ in $(seq 1 "$runs"); do
    touch "$crate/src/main.rs"
    local start end took
    start=$(date +%s.%N)
    (cd "$crate" && cargo build --release -q)
    end=$(date +%s.%N)
    took=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$took < $best" | bc -l)" = 1 ]; then best=$took; fi
  done
  echo "$best"
}

command -v bc >/dev/null || { echo "bc is required (apt-get install bc)" >&2; exit 1; }
generate plain ""
generate monitored "#[flext_obs::flext_monitor]"
plain=$(time_build plain)
monitored=$(time_build monitored)
per100=$(echo "($monitored - $plain) * 100 / $n" | bc -l)
printf 'functions: %d (best of %d release builds each)\n' "$n" "$runs"
printf 'plain:     %.2f s\n' "$plain"
printf 'monitored: %.2f s\n' "$monitored"
printf 'extra:     %.2f s per 100 monitored functions\n' "$per100"
