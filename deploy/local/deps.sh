#!/usr/bin/env bash
# Makes sure this machine has what the dev stack and the tests need; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "Starting the local PostgreSQL..."
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  fi
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
  pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

# Diesel links libpq.
if [ ! -e /usr/include/postgresql/libpq-fe.h ] && command -v apt-get >/dev/null; then
  echo "Installing libpq-dev..."
  (apt-get install -y -qq libpq-dev >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq libpq-dev)
fi

deploy/local/broker.sh install >/dev/null

if ! command -v cargo-nextest >/dev/null; then
  echo "Installing cargo-nextest..."
  cargo install --locked --quiet cargo-nextest
fi
