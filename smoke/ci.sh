#!/usr/bin/env bash
# CI: `npm run smoke` against `npm start`, as a user would run both. Starts the local stack on a free
# port (its own state file, so a developer's running stack is left alone), waits until it is ready,
# reads the admin key it prints, runs the smoke test, then stops the stack as Ctrl-C would.
#
#   smoke/ci.sh [npm start options, e.g. --skip-synth to serve the cdk.out already synthesized]
#
# Exit status: the smoke test's (0 passed, 1 failed), or 1 when the stack does not start.
# Nothing secret is printed: the stack's output (shown only when it fails to start) has its admin key
# and the console password redacted.
set -euo pipefail
cd "$(dirname "$0")/.."

READY_TIMEOUT=${SMOKE_READY_TIMEOUT:-300}
port=$(node -e "const s = require('node:net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });")
work=$(mktemp -d)
log="$work/npm-start.log"

redacted() {
  sed -E -e 's/^(Admin API key: ).*/\1<redacted>/' -e 's/^(Console sign-in: [^ ]+ ).*/\1<redacted>/' "$log"
}

# Its own process group (setsid), so stopping it reaches npm, the runner and DynamoDB Local alike.
KNOUDS_STATE_FILE="$work/state.json" PORT="$port" setsid npm start -- --quiet-logs "$@" >"$log" 2>&1 &
stack=$!

stop_stack() {
  if kill -0 "$stack" 2>/dev/null; then
    kill -INT -- "-$stack" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$stack" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$stack" 2>/dev/null; then
      echo "smoke/ci: npm start did not stop within 30 s of SIGINT; killing it"
      kill -KILL -- "-$stack" 2>/dev/null || true
    fi
  fi
  wait "$stack" 2>/dev/null || true
  rm -rf "$work"
}
trap stop_stack EXIT

echo "smoke/ci: starting npm start on port $port"
started=$(date +%s)
until grep -q '^Knouds API ready in' "$log"; do
  if ! kill -0 "$stack" 2>/dev/null; then
    echo "smoke/ci: npm start exited before it was ready; its output:"
    redacted
    exit 1
  fi
  if (( $(date +%s) - started > READY_TIMEOUT )); then
    echo "smoke/ci: npm start was not ready within ${READY_TIMEOUT} s; its output:"
    redacted
    exit 1
  fi
  sleep 1
done
echo "smoke/ci: $(grep '^Knouds API ready in' "$log")"

key=$(sed -n 's/^Admin API key: //p' "$log")
if [ -z "$key" ]; then
  echo "smoke/ci: npm start printed no admin key; its output:"
  redacted
  exit 1
fi

status=0
KNOUDS_API_URL="http://localhost:$port/v1" KNOUDS_API_KEY="$key" npm run --silent smoke || status=$?
exit "$status"
