#!/usr/bin/env bash
# `make run`: the whole dev stack on this machine, from a clean slate each time.
# Broker (Tansu) + PostgreSQL database omie_sync_dev + omie-sim (a generated 5,000-record company)
# + projector + ingress, then the demo: three tenants configured through the admin API, the first
# tested against omie-sim and fully synced with a progress bar, the fixture manifest, a generated
# stream of realistic webhooks and omie-sim's live changes, and a summary. Serves until Ctrl-C (or exits after the summary when
# RUN_EXIT_AFTER_SUMMARY=1), then stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

STATE=.devstack/run
DB_NAME=${DEV_DB_NAME:-omie_sync_dev}
DB_SERVER=${DEV_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
TOPIC=omie-sync.events.v1
EVENTS=${DEMO_EVENTS:-2400}
COMPANY_RECORDS=${DEMO_COMPANY_RECORDS:-5000}
LIVE_CHANGES=${DEMO_LIVE_CHANGES:-300}
pids=()

stop_all() {
  trap - EXIT INT TERM
  echo
  echo "Stopping the dev stack..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  deploy/local/broker.sh stop "$STATE/broker"
  echo "Stopped. Logs are in $STATE/."
}
trap stop_all EXIT
# Ctrl-C is how this stack is meant to stop: a clean exit, not an error.
trap 'exit 0' INT TERM

port_or_free() {
  python3 - "$1" <<'PY'
import socket, sys
wanted = int(sys.argv[1])
for port in (wanted, 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        continue
    finally:
        s.close()
PY
}

wait_healthy() {
  local name=$1 url=$2 log=$3
  for _ in $(seq 1 150); do
    curl -fsS "$url/health" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "$name did not become healthy; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

echo "Building..."
cargo build --quiet --bins -p ingress -p projector -p devstack -p omie-sim

echo "Starting the broker..."
deploy/local/broker.sh stop "$STATE/broker"
rm -rf "$STATE"
mkdir -p "$STATE"
BROKERS=$(deploy/local/broker.sh start "$STATE/broker")
deploy/local/broker.sh topic "$STATE/broker" "$TOPIC" 3
deploy/local/broker.sh topic "$STATE/broker" "$TOPIC.dlq" 1

echo "Preparing database $DB_NAME..."
psql "$DB_SERVER/postgres" -qAt -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >/dev/null
export DATABASE_URL="$DB_SERVER/$DB_NAME"
export KAFKA_BROKERS=$BROKERS EVENTS_TOPIC=$TOPIC
export INGRESS_PORT=${INGRESS_PORT:-$(port_or_free 8080)}
export PROJECTOR_PORT=${PROJECTOR_PORT:-$(port_or_free 8081)}
OMIE_SIM_PORT=${OMIE_SIM_PORT:-$(port_or_free 8090)}
export OMIE_API_URL="http://127.0.0.1:$OMIE_SIM_PORT"
export PUBLIC_BASE_URL="http://127.0.0.1:$INGRESS_PORT"
export RUST_LOG=${RUST_LOG:-info}
target/debug/projector migrate

echo "Starting omie-sim (:$OMIE_SIM_PORT) with a generated company of $COMPANY_RECORDS records..."
# The manifest's keys: the first demo tenant is both the fixtures' company and omie-sim's.
target/debug/omie-sim --port "$OMIE_SIM_PORT" --records "$COMPANY_RECORDS" --latency-ms 150 \
  --app-key 3188245610231 --app-secret omie-sim-secret-aurora >"$STATE/omie-sim.log" 2>&1 &
pids+=($!)

echo "Starting projector (:$PROJECTOR_PORT) and ingress (:$INGRESS_PORT)..."
target/debug/projector run >"$STATE/projector.log" 2>&1 &
pids+=($!)
target/debug/ingress >"$STATE/ingress.log" 2>&1 &
pids+=($!)
wait_healthy projector "http://127.0.0.1:$PROJECTOR_PORT" "$STATE/projector.log"
wait_healthy ingress "http://127.0.0.1:$INGRESS_PORT" "$STATE/ingress.log"
wait_healthy omie-sim "$OMIE_API_URL" "$STATE/omie-sim.log"
head -n 1 "$STATE/omie-sim.log"

target/debug/devstack demo \
  --ingress-url "http://127.0.0.1:$INGRESS_PORT" \
  --projector-url "http://127.0.0.1:$PROJECTOR_PORT" \
  --omie-sim-url "$OMIE_API_URL" \
  --fixtures tests/fixtures/omie/webhooks \
  --events "$EVENTS" \
  --live-changes "$LIVE_CHANGES"

echo
echo "Logs: $STATE/ingress.log, $STATE/projector.log, $STATE/omie-sim.log, $STATE/broker/broker.log"
if [ "${RUN_EXIT_AFTER_SUMMARY:-0}" = 1 ]; then
  exit 0
fi
echo "The stack keeps serving; press Ctrl-C to stop it."
wait "${pids[@]}"
