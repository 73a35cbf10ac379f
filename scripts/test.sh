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
source scripts/install-servers.sh
install_missing_servers
# Headless Chromium for the /ui browser test; once it is here, the test must run (not skip).
install_missing_browser
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  export FLEXT_REQUIRE_BROWSER=1
fi
install_missing_firefox
if command -v firefox-esr >/dev/null 2>&1 && command -v geckodriver >/dev/null 2>&1; then
  export FLEXT_REQUIRE_FIREFOX=1
fi

# Start one Prometheus, Pushgateway and Alertmanager on 127.0.0.1 for the tests (which read
# FLEXT_TEST_*), each with a temporary directory; stop them when this script exits. (Run without
# these variables, the tests start servers of their own.)
servers_dir=$(mktemp -d "${TMPDIR:-/tmp}/flext-obs-servers.XXXXXX")
server_pids=()
stop_servers() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$servers_dir"
}
trap stop_servers EXIT

# A port nothing listens on (bash's /dev/tcp: no curl or python needed).
next_port=19090
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$next_port") 2>/dev/null; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

# Waits until GET /-/ready on 127.0.0.1:$1 answers 200.
wait_ready() {
  local port=$1 name=$2
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n 1 <&3 | grep -q ' 200') 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not get ready on port $port; its log:" >&2
  cat "$servers_dir/$name.log" >&2
  exit 1
}

mkdir -p "$servers_dir/sd"
free_port; prometheus_port=$port
printf '%s\n' "global:" "  scrape_interval: 1s" "  evaluation_interval: 1s" "scrape_configs:" "  - job_name: flext" \
  "    scrape_interval: 1s" "    file_sd_configs:" "      - files: ['$servers_dir/sd/*.json']" "        refresh_interval: 1s" \
  > "$servers_dir/prometheus.yml"
prometheus --config.file="$servers_dir/prometheus.yml" --web.listen-address="127.0.0.1:$prometheus_port" \
  --web.external-url="http://127.0.0.1:$prometheus_port/" --storage.tsdb.path="$servers_dir/prometheus-data" \
  --enable-feature=exemplar-storage > "$servers_dir/prometheus.log" 2>&1 &
server_pids+=($!)

free_port; pushgateway_port=$port
prometheus-pushgateway --web.listen-address="127.0.0.1:$pushgateway_port" --persistence.file= --web.enable-admin-api \
  > "$servers_dir/pushgateway.log" 2>&1 &
server_pids+=($!)

free_port; alertmanager_port=$port
printf '%s\n' "route:" "  receiver: default" "  group_wait: 1s" "  group_interval: 1s" "  repeat_interval: 1h" \
  "receivers:" "  - name: default" > "$servers_dir/alertmanager.yml"
prometheus-alertmanager --config.file="$servers_dir/alertmanager.yml" --storage.path="$servers_dir/alertmanager-data" \
  --web.listen-address="127.0.0.1:$alertmanager_port" --web.external-url="http://127.0.0.1:$alertmanager_port/" \
  --cluster.listen-address= > "$servers_dir/alertmanager.log" 2>&1 &
server_pids+=($!)

wait_ready "$prometheus_port" prometheus
wait_ready "$pushgateway_port" pushgateway
wait_ready "$alertmanager_port" alertmanager
export FLEXT_TEST_PROMETHEUS_URL="http://127.0.0.1:$prometheus_port"
export FLEXT_TEST_PROMETHEUS_SD_DIR="$servers_dir/sd"
export FLEXT_TEST_PUSHGATEWAY_URL="http://127.0.0.1:$pushgateway_port"
export FLEXT_TEST_ALERTMANAGER_URL="http://127.0.0.1:$alertmanager_port"
echo "servers for the tests: prometheus :$prometheus_port, pushgateway :$pushgateway_port, alertmanager :$alertmanager_port (logs in $servers_dir)"

# Unit, behaviour, compile (trybuild) and doc tests of the whole workspace (the tests crate turns
# on `otlp`, `tls` and `otlp-grpc`, so the https:// tests run against a rustls peer and the gRPC
# ones against a tonic receiver).
cargo test --workspace

# The runtime crate alone builds with no optional feature, its defaults (no OTLP, no TLS), OTLP
# alone, TLS alone and OTLP with TLS (the workspace build above unifies every feature on).
cargo check -q -p flext-obs --no-default-features
cargo check -q -p flext-obs
cargo check -q -p flext-obs --no-default-features --features otlp
cargo check -q -p flext-obs --no-default-features --features bridge-metrics,bridge-log,bridge-http,bridge-tracing
cargo check -q -p flext-obs --no-default-features --features tls
cargo check -q -p flext-obs --no-default-features --features otlp,tls
cargo check -q -p flext-obs --no-default-features --features otlp-grpc
cargo check -q -p flext-obs --features otlp-grpc,tls
# Its unit tests without `tls`: an https:// URL is an error that names the feature.
cargo test -q -p flext-obs --lib

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
