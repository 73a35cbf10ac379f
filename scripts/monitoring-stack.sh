#!/usr/bin/env bash
# A local monitoring stack for the examples: Prometheus (scraping the service example and loading
# the SLO rules generated from its code), Alertmanager (receiving those alerts) and Pushgateway, all
# on 127.0.0.1, each with a temporary directory. Runs until Ctrl-C (or for --seconds N), then stops
# everything and removes the directories.
#
#   bash scripts/monitoring-stack.sh            # in another terminal:
#   cargo run -p flext-obs-examples --example service
#
# Environment: FLEXT_METRICS_ADDR (the example's address, default 127.0.0.1:9464), PROMETHEUS_PORT
# (9090), ALERTMANAGER_PORT (9093), PUSHGATEWAY_PORT (9091; a taken port moves to the next free one),
# RULES_EXAMPLE (below).
set -euo pipefail
cd "$(dirname "$0")/.."

# The example whose `rules` / `dashboards DIR` subcommands (flext_obs::slo::cli) write the rules and
# dashboards: the service example, whose impl block carries the objective.
RULES_EXAMPLE=${RULES_EXAMPLE:-service}
METRICS_ADDR=${FLEXT_METRICS_ADDR:-127.0.0.1:9464}
# A wildcard listen address is scraped on loopback.
METRICS_ADDR=${METRICS_ADDR/#0.0.0.0:/127.0.0.1:}
METRICS_ADDR=${METRICS_ADDR/#\[::\]:/127.0.0.1:}

seconds=""
if [ "${1:-}" = "--seconds" ]; then
  seconds=${2:?--seconds needs a number}
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--seconds N]" >&2
  exit 2
fi

# Install only what is missing (Debian packages), as scripts/test.sh does.
source scripts/install-servers.sh
install_missing_servers

dir=$(mktemp -d "${TMPDIR:-/tmp}/flext-obs-stack.XXXXXX")
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
  echo "monitoring stack stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

# The first port from $1 up that nothing listens on (bash's /dev/tcp: no curl needed).
free_port() {
  port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
}

# Waits (at most 30 s) until GET /-/ready on 127.0.0.1:$1 answers 200.
wait_ready() {
  local port=$1 name=$2
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n 1 <&3 | grep -q ' 200') 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not get ready on 127.0.0.1:$port within 30 s; its log:" >&2
  cat "$dir/$name.log" >&2
  exit 1
}

echo "generating the SLO rules and dashboards with the $RULES_EXAMPLE example"
cargo run -q -p flext-obs-examples --example "$RULES_EXAMPLE" -- rules > "$dir/rules.yml"
cargo run -q -p flext-obs-examples --example "$RULES_EXAMPLE" -- dashboards "$dir/dashboards" > /dev/null
promtool check rules "$dir/rules.yml" > /dev/null

free_port "${PROMETHEUS_PORT:-9090}"; prometheus_port=$port
free_port "${ALERTMANAGER_PORT:-9093}"; [ "$port" -ne "$prometheus_port" ] || free_port $((port + 1)); alertmanager_port=$port
free_port "${PUSHGATEWAY_PORT:-9091}"
while [ "$port" -eq "$prometheus_port" ] || [ "$port" -eq "$alertmanager_port" ]; do free_port $((port + 1)); done
pushgateway_port=$port

printf '%s\n' "route:" "  receiver: default" "  group_by: [alertname, objective_name, service_name]" \
  "  group_wait: 10s" "  group_interval: 1m" "  repeat_interval: 4h" "receivers:" "  - name: default" \
  > "$dir/alertmanager.yml"
prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/alertmanager-data" \
  --web.listen-address="127.0.0.1:$alertmanager_port" --web.external-url="http://127.0.0.1:$alertmanager_port/" \
  --cluster.listen-address= > "$dir/alertmanager.log" 2>&1 &
pids+=($!)

prometheus-pushgateway --web.listen-address="127.0.0.1:$pushgateway_port" --persistence.file= \
  > "$dir/pushgateway.log" 2>&1 &
pids+=($!)

printf '%s\n' "global:" "  scrape_interval: 5s" "  evaluation_interval: 5s" \
  "rule_files: ['$dir/rules.yml']" \
  "alerting:" "  alertmanagers:" "    - static_configs:" "        - targets: ['127.0.0.1:$alertmanager_port']" \
  "scrape_configs:" \
  "  - job_name: flext-service" "    static_configs:" "      - targets: ['$METRICS_ADDR']" \
  "  - job_name: pushgateway" "    honor_labels: true" "    static_configs:" "      - targets: ['127.0.0.1:$pushgateway_port']" \
  "  - job_name: prometheus" "    static_configs:" "      - targets: ['127.0.0.1:$prometheus_port']" \
  > "$dir/prometheus.yml"
prometheus --config.file="$dir/prometheus.yml" --web.listen-address="127.0.0.1:$prometheus_port" \
  --web.external-url="http://127.0.0.1:$prometheus_port/" --storage.tsdb.path="$dir/prometheus-data" \
  --web.enable-lifecycle --enable-feature=exemplar-storage > "$dir/prometheus.log" 2>&1 &
pids+=($!)

wait_ready "$alertmanager_port" alertmanager
wait_ready "$pushgateway_port" pushgateway
wait_ready "$prometheus_port" prometheus

cat <<INFO
monitoring stack ready (files and logs in $dir):
  Prometheus    http://127.0.0.1:$prometheus_port/   (scrapes $METRICS_ADDR; rules: http://127.0.0.1:$prometheus_port/rules, alerts: /alerts)
  Alertmanager  http://127.0.0.1:$alertmanager_port/
  Pushgateway   http://127.0.0.1:$pushgateway_port/   (PROMETHEUS_PUSH_GATEWAY=http://127.0.0.1:$pushgateway_port)
  Dashboards    $dir/dashboards/*.json   (Grafana: Dashboards > Import, data source: this Prometheus)
Start the service example (FLEXT_METRICS_ADDR=$METRICS_ADDR FLEXT_ALERTMANAGER_URL=http://127.0.0.1:$alertmanager_port \\
  cargo run -p flext-obs-examples --example service).
Ctrl-C stops the stack.
INFO

# Until Ctrl-C, --seconds N, or one of the servers exits.
if [ -n "$seconds" ]; then
  sleep "$seconds" & pids+=($!)
fi
wait -n
