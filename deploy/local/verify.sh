#!/usr/bin/env bash
# The whole check, as CI runs it: install what is missing, lint and type-check, build, run
# every test against real etcd and gRPC, the fault suite, run the quick benchmark, and end with a plain
# "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/ensure-tools.sh || exit 1
# Everything below runs the Node.js pinned in package.json (node_modules/.bin/node), also when this
# script is run as `bash deploy/local/verify.sh` rather than `npm run verify` (which does the same).
export PATH="$PWD/node_modules/.bin:$PATH"
echo "==> node $(node --version) ($(command -v node))"

status=0
step() {
  echo "==> $*"
  "$@" || status=1
}

step npm run --silent lint
step npm run --silent build
# Generated protobuf types must match the .proto files.
if [ -d .git ]; then
  npm run --silent gen:proto >/dev/null 2>&1 && git diff --quiet -- src/generated || { echo "src/generated is stale: run npm run gen:proto"; status=1; }
fi

tap=$(mktemp)
echo "==> npm test"
npx ava --tap 2>&1 | tee -a "$tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# The fault suite: real etcd (one member and a three-member cluster), statemanager processes
# killed, stopped and starved, a real ActionController down and slow.
echo "==> npm run test:faults"
npx ava --config ava.faults.config.js --tap 2>&1 | tee -a "$tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# The deterministic simulation (test/sim): 1,000 seeded schedules of churn and faults on an
# in-memory etcd; exits non-zero on any invariant violation, printing the seed to replay.
step npm run --silent test:sim
passed=$(grep -Ec '^ok [0-9]+' "$tap" | tr -d ' ')
skipped=$(grep -Ec '^ok [0-9]+.*# SKIP' "$tap" | tr -d ' ')
failed=$(grep -Ec '^not ok [0-9]+' "$tap" | tr -d ' ')
passed=$((passed - skipped))
rm -f "$tap"

if [ -f test/bench/run.ts ] && [ "${SKIP_BENCH:-}" = "" ]; then
  step npm run --silent bench -- --quick
fi

# The alerts' promtool tests skip without promtool (deploy/local/ensure-tools.sh installs it): say so.
command -v promtool >/dev/null 2>&1 || echo "NOTE: promtool not found: the promtool tests of the alerts (test/deploy/monitoring.test.ts) were skipped"
[ "$passed" -gt 0 ] || { echo "no tests ran"; status=1; }
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit $status
