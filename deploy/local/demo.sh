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
bash deploy/local/ensure-tools.sh
# The pinned Node.js (package.json) first, as `npm run` does, also when this script runs on its own.
export PATH="$PWD/node_modules/.bin:$PATH"
npm run --silent build

CLIENT_PORT=${DEMO_ETCD_PORT:-23791}
PEER_PORT=$((CLIENT_PORT + 1))
ENDPOINT="http://127.0.0.1:${CLIENT_PORT}"
DATA=.etcd/demo
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
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "$ENDPOINT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

export ETCD_ENDPOINTS="$ENDPOINT"
export STATEMANAGER_HTTP_ADDR=127.0.0.1:${DEMO_HTTP_PORT:-47086}
export STATEMANAGER_GRPC_ADDR=127.0.0.1:${DEMO_GRPC_PORT:-47006}
export STATEMANAGER_CONFIG=deploy/local/demo-config.yaml

export ACTION_CONTROLLER_ADDR=127.0.0.1:${DEMO_AC_PORT:-47001}
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
echo "    node failure: kill $AGENT_PID  (its lease expires within ${LEASE_TTL} s; 2 s later the models are Dead, packages Error, reconcile requests sent)"
if [ "${DEMO_STEPS:-0}" != 0 ]; then
  wait "$AGENT_PID"
else
  # Runs on when the agent is killed, so its packages can be watched failing; Ctrl-C ends it.
  wait "${pids[2]}"
fi
