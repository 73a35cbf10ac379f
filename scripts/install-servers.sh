# Sourced by scripts/test.sh and scripts/monitoring-stack.sh: installs the Debian packages of the
# real servers (Prometheus with promtool, Pushgateway, Alertmanager) that are missing, so a rerun
# costs nothing.
install_missing_servers() {
  local missing=()
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    local sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# The browser the /ui test drives (Debian's chromium and chromium-driver). A failed install is
# reported and the test then says loudly that it was skipped; the servers above stay required.
install_missing_browser() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  echo "installing chromium chromium-driver"
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends chromium chromium-driver \
    || echo "WARNING: chromium could not be installed: the /ui browser test will be skipped" >&2
}

# Firefox for the same test: Debian's firefox-esr, and Mozilla's geckodriver from crates.io
# (Debian does not package it; `cargo install --locked` builds the version Mozilla published).
install_missing_firefox() {
  if ! command -v firefox-esr >/dev/null 2>&1; then
    echo "installing firefox-esr"
    local sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends firefox-esr \
      || echo "WARNING: firefox-esr could not be installed: the /ui test will skip Firefox" >&2
  fi
  if ! command -v geckodriver >/dev/null 2>&1; then
    echo "installing geckodriver (cargo install --locked geckodriver)"
    cargo install --locked --quiet geckodriver@0.37.1 \
      || echo "WARNING: geckodriver could not be installed: the /ui test will skip Firefox" >&2
  fi
}
