#!/usr/bin/env bash
# Tansu, the Kafka-API broker of the dev stack and the tests, run beside the product (never linked):
#   broker.sh install              build it once per machine (outside the clone) and print its path
#   broker.sh start DIR [PORT [ADVERTISED_PORT]]
#                                  start a broker with durable storage in DIR (on a free port by
#                                  default; ADVERTISED_PORT when clients reach it through a proxy)
#   broker.sh topic DIR NAME N     create topic NAME with N partitions (idempotent)
#   broker.sh stop DIR             stop the broker started in DIR
set -euo pipefail

TANSU_VERSION=0.6.0
TOOLS_DIR="${OMIE_SYNC_TOOLS:-${XDG_DATA_HOME:-$HOME/.local/share}/omie-sync}"
TANSU_ROOT="$TOOLS_DIR/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"

install() {
  if [ ! -x "$TANSU_BIN" ]; then
    echo "Building Tansu $TANSU_VERSION into $TANSU_ROOT (once per machine, ~15 min on 2 cores)..." >&2
    cargo install --locked --quiet tansu --version "$TANSU_VERSION" --features libsql --root "$TANSU_ROOT" >&2
  fi
  echo "$TANSU_BIN"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 port=${2:-$(free_port)}
  local advertised=${3:-$port}
  install >/dev/null
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
    echo "127.0.0.1:$(cat "$dir/broker.port")"
    return
  fi
  # Tansu reads these from the environment too; keep the caller's settings out of the broker.
  # Tansu resolves a sqlite:// path against its working directory. `exec` makes the recorded
  # pid the broker's own, so `stop` reaches it.
  (
    cd "$dir" || exit 1
    # Its own session: a Ctrl-C meant for the services must not take the broker down first.
    exec setsid env -u OTEL_EXPORTER_OTLP_ENDPOINT -u STORAGE_ENGINE -u CLUSTER_ID \
      nohup "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$advertised" \
        --storage-engine "sqlite://log.db" \
        </dev/null >"$dir/broker.log" 2>&1
  ) &
  echo $! >"$dir/broker.pid"
  echo "$port" >"$dir/broker.port"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port"
      return
    fi
    kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "Tansu did not start; see $dir/broker.log" >&2
  exit 1
}

topic() {
  local dir=$1 name=$2 partitions=$3
  local port
  port=$(cat "$dir/broker.port")
  if ! output=$("$TANSU_BIN" topic create "$name" --broker "tcp://127.0.0.1:$port" --partitions "$partitions" 2>&1); then
    case "$output" in
      *xists*) ;;
      *) echo "$output" >&2; exit 1 ;;
    esac
  fi
}

stop() {
  local dir=$1
  if [ -f "$dir/broker.pid" ]; then
    local pid
    pid=$(cat "$dir/broker.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for the port to be released, so a restart on the same port finds it free.
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/broker.pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "${3:-}" "${4:-}" ;;
  topic) topic "$2" "$3" "$4" ;;
  stop) stop "$2" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
