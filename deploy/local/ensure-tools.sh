#!/usr/bin/env bash
# Installs what a fresh Debian machine with Node 20 lacks for statemanager: npm dependencies
# (when node_modules is missing or older than the lock file), etcd (Debian's etcd-server) and,
# optionally, promtool (Debian's prometheus).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null 2>&1; then
  echo "statemanager needs Node.js 20 or newer on PATH" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

if ! command -v etcd >/dev/null 2>&1; then
  echo "==> installing etcd from Debian (etcd-server, etcd-client)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
  # The package may start a system etcd on 2379; ours run on their own ports, so leave it be.
fi
# (No `| head`: with pipefail, etcd's SIGPIPE would fail the script.)
version=$(etcd --version)
echo "${version%%$'\n'*}"

# promtool (Debian's prometheus package) for `promtool check rules` / `promtool test rules` of the
# alerts (test/deploy/monitoring.test.ts). Optional: without it those tests are skipped and say so.
# The package's service is not started in a container (policy-rc.d, no systemd); the tests never
# talk to a Prometheus server.
if ! command -v promtool >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing promtool from Debian (prometheus)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
      echo "WARNING: could not install Debian's prometheus package: the promtool tests of the alerts will be skipped" >&2
  else
    echo "WARNING: promtool is missing and apt-get is not available: the promtool tests of the alerts will be skipped (install Prometheus's promtool to run them)" >&2
  fi
fi
if command -v promtool >/dev/null 2>&1; then
  version=$(promtool --version 2>&1)
  echo "${version%%$'\n'*}"
fi
