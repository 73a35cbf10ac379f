#!/usr/bin/env bash
# Measures what an instrumentation attribute adds to build time, in one run: generates a crate
# with N functions (default 500) four times, plain, under #[flext_obs::flext_monitor], under
# #[fastrace::trace] and under #[tracing::instrument(skip_all)], every crate with the same
# dependencies (flext-obs, fastrace with its `enable` feature, tracing) and the same workspace
# Cargo.lock, and times a release build of each crate alone (dependencies are built first and not
# counted). Prints seconds per 100 functions over the plain crate, and the expanded lines per
# function: `rustc -Zunpretty=expanded` output of each crate minus the plain one's, divided by N
# (that flag is unstable: it is used through RUSTC_BOOTSTRAP=1 for this count only, and the line
# is left out when the compiler refuses it).
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
fastrace = { version = "0.7", features = ["enable"] }
tracing = "0.1"

[workspace]
TOML
  # The workspace's lock file: every variant builds against the same dependency versions.
  cp "$root/Cargo.lock" "$crate/Cargo.lock"
  {
    echo "use flext_obs as _; use fastrace as _; use tracing as _;"
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

expanded_lines() { # variant -> lines of the expanded crate, or empty when the flag is refused
  local crate=$dir/$1
  (cd "$crate" && RUSTC_BOOTSTRAP=1 cargo rustc --profile=check -q --bin "build_cost_$1" -- -Zunpretty=expanded 2>/dev/null | wc -l) || true
}

command -v bc >/dev/null || { echo "bc is required (apt-get install bc)" >&2; exit 1; }
variants=(plain monitored fastrace tracing)
generate plain ""
generate monitored "#[flext_obs::flext_monitor]"
generate fastrace "#[fastrace::trace]"
generate tracing "#[tracing::instrument(skip_all)]"
declare -A seconds lines
for v in "${variants[@]}"; do seconds[$v]=$(time_build "$v"); done
for v in "${variants[@]}"; do lines[$v]=$(expanded_lines "$v"); done
printf 'functions: %d (best of %d release builds each, one run)\n' "$n" "$runs"
printf '%-10s %8s %24s %26s\n' variant build "extra per 100 functions" "expanded lines per function"
for v in "${variants[@]}"; do
  extra=$(echo "(${seconds[$v]} - ${seconds[plain]}) * 100 / $n" | bc -l)
  if [ -n "${lines[$v]}" ] && [ -n "${lines[plain]}" ] && [ "${lines[plain]}" -gt 0 ]; then
    per_fn=$(printf '%.1f' "$(echo "(${lines[$v]} - ${lines[plain]}) / $n" | bc -l)")
  else
    per_fn="n/a"
  fi
  printf '%-10s %7.2fs %22.2fs %26s\n' "$v" "${seconds[$v]}" "$extra" "$per_fn"
done
