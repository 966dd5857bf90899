#!/usr/bin/env bash
# The demo: a local etcd (data under .etcd/demo), statemanager, and a simulated node agent
# that changes container states every few seconds. The terminal shows the state changes.
# The agent keeps its nodes' lease keys alive (demo-config.yaml turns nodeLiveness on): kill it
# (the command is printed) and its packages turn Error and are sent to the ActionController.
# A simulated policy manager asks, once, to move model nav-map from edge-1 to edge-2
# (TriggerOffloading), which statemanager forwards to the ActionController's OffloadModel.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
# DEMO_NO_SETUP=1 (the demo's own test, after the suite's build): no install or build step.
if [ "${DEMO_NO_SETUP:-}" != 1 ]; then bash deploy/local/ensure-tools.sh; fi
# The pinned Node.js (package.json) first, as `npm run` does, also when this script runs on its own.
export PATH="$PWD/node_modules/.bin:$PATH"
if [ "${DEMO_NO_SETUP:-}" != 1 ]; then npm run --silent build; fi

# Each port: the one set in the environment, which must be free; else the default when it is free,
# else one the kernel picks (a default taken by another program made the demo's etcd fail to
# start and the rest talk to whatever listened there).
port_for() { # variable default
  local set=${!1:-}
  node -e '
    const net = require("node:net");
    const [want, explicit, name] = [Number(process.argv[1]), process.argv[2] === "1", process.argv[3]];
    const tryListen = (port) => new Promise((ok) => {
      const s = net.createServer().once("error", () => ok(undefined));
      s.listen(port, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
    });
    (async () => {
      const got = await tryListen(want);
      if (got !== undefined) return console.log(got);
      if (explicit) { console.error(`demo: ${name}=${want}, but that port is in use on 127.0.0.1: choose another`); process.exit(1); }
      const other = await tryListen(0);
      console.error(`demo: port ${want} is in use on 127.0.0.1; using ${other} (set ${name} to choose)`);
      console.log(other);
    })();' "${set:-$2}" "$([ -n "$set" ] && echo 1 || echo 0)" "$1"
}
CLIENT_PORT=$(port_for DEMO_ETCD_PORT 23791)
PEER_PORT=$(port_for DEMO_ETCD_PEER_PORT $((CLIENT_PORT + 1)))
HTTP_PORT=$(port_for DEMO_HTTP_PORT 47086)
GRPC_PORT=$(port_for DEMO_GRPC_PORT 47006)
AC_PORT=$(port_for DEMO_AC_PORT 47001)
ENDPOINT="http://127.0.0.1:${CLIENT_PORT}"
DATA=${DEMO_DATA_DIR:-.etcd/demo}
mkdir -p "$DATA"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped (etcd data kept in $DATA; remove it for a fresh start)"
}
trap cleanup EXIT INT TERM

echo "==> etcd on $ENDPOINT"
etcd --name demo --data-dir "$DATA" \
  --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
  --listen-peer-urls "http://127.0.0.1:${PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORT}" \
  --initial-cluster "demo=http://127.0.0.1:${PEER_PORT}" --logger=zap --log-level=error >"$DATA.log" 2>&1 &
ETCD_PID=$!
pids+=("$ETCD_PID")
for _ in $(seq 1 100); do
  # Our etcd, not another program that took the port meanwhile.
  if ! kill -0 "$ETCD_PID" 2>/dev/null; then
    echo "demo: etcd exited at start; its log ($DATA.log) ends with:" >&2
    tail -n 5 "$DATA.log" >&2
    exit 1
  fi
  curl -fs "$ENDPOINT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

export ETCD_ENDPOINTS="$ENDPOINT"
export STATEMANAGER_HTTP_ADDR=127.0.0.1:${HTTP_PORT}
export STATEMANAGER_GRPC_ADDR=127.0.0.1:${GRPC_PORT}
export STATEMANAGER_CONFIG=deploy/local/demo-config.yaml

export ACTION_CONTROLLER_ADDR=127.0.0.1:${AC_PORT}
echo "==> stand-in ActionController on $ACTION_CONTROLLER_ADDR"
node dist/src/demo/action-controller.js &
pids+=($!)

echo "==> statemanager (metrics and probes on http://$STATEMANAGER_HTTP_ADDR)"
node dist/src/main.js 2>&1 | grep --line-buffered -E 'state changed|reconcile request|offloading request|ready|error|warn' &
pids+=($!)

LEASE_TTL=${DEMO_LEASE_TTL:-3}
echo "==> simulated node agent (a change every ${DEMO_INTERVAL_MS:-3000} ms, node leases of ${LEASE_TTL} s)"
node dist/src/demo/node-agent.js --interval "${DEMO_INTERVAL_MS:-3000}" --steps "${DEMO_STEPS:-0}" --lease-ttl "$LEASE_TTL" &
AGENT_PID=$!
pids+=("$AGENT_PID")
OFFLOAD_AFTER_MS=${DEMO_OFFLOAD_AFTER_MS:-8000}
echo "==> simulated policy manager (asks to move nav-map from edge-1 to edge-2 after ${OFFLOAD_AFTER_MS} ms)"
node dist/src/demo/policy-manager.js --after "$OFFLOAD_AFTER_MS" &
pids+=($!)
echo "    read a model: ETCD_ENDPOINTS=$ENDPOINT node dist/src/cli.js describe model nav-map"
echo "    node failure: kill $AGENT_PID  (its lease expires within ${LEASE_TTL} s; 2 s later the models are Dead, packages Error, reconcile requests sent)"
if [ "${DEMO_STEPS:-0}" != 0 ]; then
  wait "$AGENT_PID"
else
  # Runs on when the agent is killed, so its packages can be watched failing; Ctrl-C ends it.
  wait "${pids[2]}"
fi
