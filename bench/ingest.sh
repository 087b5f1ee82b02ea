#!/bin/sh
# Durable ingest: 1,000 conversations of 2 members, one sender each, 8 sends
# in flight each; acknowledged sends/s (a send is acknowledged only after its
# commit). The default config's four features, the host on core 0 and the
# generator on core 1, on each storage: SQLite (synchronous = normal and
# full), PostgreSQL directly and through PgBouncer in transaction pooling,
# both from tests/servers/with-postgres.sh (PostgreSQL 15, fsync=off,
# max_connections=200; PgBouncer pool_mode=transaction; not pinned).
#   bench/ingest.sh [seconds] [repetitions] | bench/summarize.py
#   PERF_DIR=/tmp/p ONLY=sqlite-normal bench/ingest.sh 5 1   -> perf record of the host too
set -eu
cd "$(dirname "$0")/.."
# PostgreSQL and PgBouncer for the duration of the run.
if [ -z "${DATABASE_URL:-}" ]; then exec tests/servers/with-postgres.sh "$0" "$@"; fi
seconds=${1:-5}
repetitions=${2:-1}
build=build
loadgen=$build/bin/switchboard-loadgen
[ -x "$loadgen" ] || cmake --build $build
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
server=

config() {  # $1: the [storage] table
  cat <<TOML
[server]
listen = "127.0.0.1:0"
threads = 1
commands_per_second = 1000000
command_burst = 1000000
[auth]
algorithm = "HS256"
secret = "bench-secret-0123456789"
[bus]
plugin = "bus-gochannel"
$1
[[features]]
plugin = "feature-reactions"
[[features]]
plugin = "feature-pins"
[[features]]
plugin = "feature-typing"
[[features]]
plugin = "feature-receipts"
TOML
}

pg_port=$(echo "$DATABASE_URL" | sed 's|.*:\([0-9]*\)/.*|\1|')
reset_postgres() {  # each run starts from empty tables
  runuser -u postgres -- psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d switchboard \
    -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public AUTHORIZATION switchboard" >/dev/null
}

run() {  # label, storage table
  case " ${ONLY:-$1} " in *" $1 "*) ;; *) return 0 ;; esac
  rm -f "$work"/ingest.db*
  reset_postgres
  config "$2" >"$work/ingest.toml"
  taskset -c 0 $build/bin/switchboard serve --config "$work/ingest.toml" >"$work/host.log" 2>&1 &
  server=$!
  port=
  for _ in $(seq 100); do
    port=$(grep -o 'listening address=127.0.0.1:[0-9]*' "$work/host.log" | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$work/host.log" >&2; exit 1; }
  profiler=
  label=ingest/$1
  if [ -n "${PERF_DIR:-}" ]; then  # a profile of the host over the measured seconds (it slows the host)
    mkdir -p "$PERF_DIR"
    (sleep 3 && perf record -q -g -p "$server" -o "$PERF_DIR/$1.perf.data" -- sleep "$seconds") >/dev/null &
    profiler=$!
    label=ingest-profiled/$1
  fi
  taskset -c 1 $loadgen --port "$port" --server-pid "$server" --seconds "$seconds" --warmup 2 \
    --connections 2000 --conversation-size 2 --senders 1 --window 8 --label "$label"
  if [ -n "$profiler" ] && ! wait "$profiler"; then echo "perf record failed for $1" >&2; fi
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
}

sqlite() { printf '[storage]\nplugin = "storage-sqlite"\n[storage.config]\npath = "%s"\nsynchronous = "%s"\n' "$work/ingest.db" "$1"; }
postgres() { printf '[storage]\nplugin = "storage-postgres"\n[storage.config]\nurl = "%s"\nwriters = 2\n' "$1"; }

for _ in $(seq "$repetitions"); do
  run sqlite-normal "$(sqlite normal)"
  run sqlite-full "$(sqlite full)"
  run postgres-direct "$(postgres "$DATABASE_URL")"
  run postgres-pgbouncer "$(postgres "$DATABASE_URL_POOLED")"
done
