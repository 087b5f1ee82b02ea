#!/bin/sh
# Cluster benchmarks on this machine, against real servers: PostgreSQL and
# PgBouncer (tests/servers/with-postgres.sh) and a nats-server started here.
# Prints one JSON line per run (bench/summarize.py makes the table).
#
#   bench/cluster.sh latency [seconds] [repetitions]
#     Three hosts on 127.0.0.2-4 (pinned to core 0; the generator to core 1),
#     1,000 connections spread over them in conversations of 10, an offered
#     200 messages/s (2,000 deliveries/s): send-to-receive latency of deliveries that crossed
#     hosts, for bus-nats and bus-sql, and for one host alone (bus-gochannel,
#     same storage) as the peer measured in the same run.
#   bench/cluster.sh ingest [seconds] [repetitions]
#     Persisted messages/s across the cluster, the default config's four
#     features on every host: three hosts on 127.0.0.2-4 (pinned to core 0,
#     the generator to core 1), 2,000 connections spread over them in
#     conversations of 2, one sender each, 8 sends in flight (acknowledged only
#     after the commit) — for bus-nats with PostgreSQL direct and for bus-sql
#     with everything through PgBouncer, and one host alone (bus-gochannel,
#     PostgreSQL direct) as the peer. Then, on the same hosts, an open loop at
#     half the rate just measured: the latency of deliveries that crossed hosts.
#     SHAPES="nats:nats:3" runs one shape (label:bus:hosts), here and in
#     latency; FEATURES= runs the hosts without features.
#   bench/cluster.sh capacity [connections]
#     Six hosts on 127.0.0.2-7, several generator processes: how many
#     authenticated WebSocket connections the machine holds at once (no
#     process may have more than ~20,000 open files here), while a trickle of
#     messages checks that they are alive.
#   bench/cluster.sh reconnect [clients] [hosts]
#     A reconnect storm: hosts on 127.0.0.2.. (bus-nats, storage-postgres, not
#     pinned), as many generator processes as hosts. Once every client is
#     connected, all drop at once; one message is posted to each conversation
#     while they are away; all reconnect (64 handshakes in flight per
#     generator) and resume from their last seq. Measured: from the drop to
#     the last client with its missed message replayed (defaults: 100,000
#     clients, six hosts).
set -eu
cd "$(dirname "$0")/.."
mode=${1:-latency}
[ $# -gt 0 ] && shift
if [ -z "${DATABASE_URL:-}" ]; then
  exec tests/servers/with-postgres.sh "$0" "$mode" "$@"
fi
build=${BENCH_BUILD:-build}  # another build of the same tree, for an A/B
loadgen=$build/bin/switchboard-loadgen
[ -x "$loadgen" ] || cmake --build $build
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=
nats_pid=
cleanup() {
  for p in $pids $nats_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
secret=bench-secret-0123456789
nats_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
"$nats_server" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
nats_pid=$!

# host_config NAME BUS STORAGE_URL [features]: a config for one host of a
# shape; with `features`, the default config's four.
host_config() {
  name=$1 bus=$2 url=$3 with_features=${4:-}
  case $bus in
    nats) bus_table="plugin = \"bus-nats\"
[bus.config]
url = \"nats://127.0.0.1:$nats_port\"" ;;
    sql) bus_table="plugin = \"bus-sql\"
[bus.config]
backend = \"postgres\"
url = \"$url\"
poll_interval_ms = 50" ;;
    gochannel) bus_table="plugin = \"bus-gochannel\"" ;;
  esac
  cat >"$work/$name.toml" <<TOML
[server]
listen = "\${LISTEN}"
threads = 1
commands_per_second = 1000000
command_burst = 1000000
[auth]
algorithm = "HS256"
secret = "$secret"
[log]
level = "info"
[bus]
$bus_table
[storage]
plugin = "storage-postgres"
[storage.config]
url = "$url"
pool_size = 2
writers = 1
TOML
  if [ -n "$with_features" ]; then
    for feature in reactions pins typing receipts; do
      printf '[[features]]\nplugin = "feature-%s"\n' "$feature" >>"$work/$name.toml"
    done
  fi
}

# start_hosts CONFIG COUNT [PIN]: hosts on 127.0.0.2, .3, ...; sets $targets.
start_hosts() {
  config=$1 count=$2 pin=${3:-}
  targets= pids=
  i=0
  while [ $i -lt "$count" ]; do
    addr=127.0.0.$((i + 2))
    LISTEN=$addr:0 ${pin:+taskset -c $pin} $build/bin/switchboard serve --config "$config" >"$work/host$i.log" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
  done
  i=0
  while [ $i -lt "$count" ]; do
    port=
    for _ in $(seq 200); do
      port=$(grep -o 'listening address=[0-9.]*:[0-9]*' "$work/host$i.log" 2>/dev/null | cut -d= -f2 || true)
      [ -n "$port" ] && break
      sleep 0.05
    done
    [ -n "$port" ] || { cat "$work/host$i.log" >&2; exit 1; }
    targets="$targets${targets:+,}$port"
    i=$((i + 1))
  done
}

stop_hosts() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  pids=
}

# print_generators N: each generator's JSON line; its stderr, as comments.
print_generators() {
  g=0
  while [ $g -lt "$1" ]; do
    cat "$work/gen$g.json"
    [ -s "$work/gen$g.err" ] && sed 's/^/# /' "$work/gen$g.err" >&2
    g=$((g + 1))
  done
}

# start_shape LABEL:BUS:HOSTS FEATURES WRITERS: that shape's hosts, pinned to
# core 0 (bus-sql's hosts reach PostgreSQL through PgBouncer); sets $label.
start_shape() {
  label=${1%%:*} rest=${1#*:}
  bus=${rest%%:*} count=${rest#*:}
  url=$DATABASE_URL
  [ "$bus" = sql ] && url=$DATABASE_URL_POOLED
  host_config "$label" "$bus" "$url" "$2"
  sed -i "s/^writers = 1/writers = $3/" "$work/$label.toml"
  start_hosts "$work/$label.toml" "$count" 0
}

offset=1000000
# generate LABEL ARGS...: one generator run on core 1 against $targets, for
# $seconds after 2 s of warm-up, with fresh users (the database is shared).
generate() {
  label_=$1
  shift
  taskset -c 1 $loadgen --targets "$targets" --secret "$secret" --seconds "$seconds" --warmup 2 \
    --user-offset "$offset" --label "$label_" "$@"
  offset=$((offset + 100000))
}

# over_shapes REPETITIONS FEATURES WRITERS RUN: for each repetition and each
# shape of $SHAPES (label:bus:hosts), its hosts started, RUN called, the hosts
# stopped.
over_shapes() {
  for _ in $(seq "$1"); do
    for shape in ${SHAPES:-single:gochannel:1 nats:nats:3 sql:sql:3}; do
      start_shape "$shape" "$2" "$3"
      "$4"
      stop_hosts
    done
  done
}

latency() {
  seconds=${1:-10}
  rate=${RATE:-200}  # messages/s offered in total; RATE=2000 shows where the writes saturate
  over_shapes "${2:-1}" "" 1 latency_run
}
latency_run() {
  generate "cluster-$label/latency-$rate" --connections 1000 --conversation-size 10 --senders 1 --rate "$rate"
}

ingest() {
  seconds=${1:-10}
  suffix=
  [ -z "${FEATURES-features}" ] && suffix=-nofeatures  # its own label: not a median with the default's
  over_shapes "${2:-1}" "${FEATURES-features}" 2 ingest_run  # writers as bench/ingest.sh
}
ingest_run() {
  generate "cluster-$label$suffix/ingest" --connections 2000 --conversation-size 2 --senders 1 --window 8 \
    >"$work/ingest.json"
  cat "$work/ingest.json"
  rate=$(/usr/bin/python3 -c 'import json,sys; print(max(1, int(json.load(sys.stdin)["sends_acked_per_s"] / 2)))' <"$work/ingest.json")
  generate "cluster-$label$suffix/latency-at-half" --connections 2000 --conversation-size 2 --senders 1 --rate "$rate"
}

capacity() {
  total=${1:-100000}
  hosts=6
  generators=6
  host_config capacity nats "$DATABASE_URL"
  sed -i 's/^pool_size = 2/pool_size = 4/' "$work/capacity.toml"
  # Each host holds total/hosts connections: under the per-process file limit.
  # Not pinned: connecting 100,000 clients is the whole machine's work.
  start_hosts "$work/capacity.toml" $hosts
  per=$((total / generators))
  gen_pids=
  g=0
  while [ $g -lt $generators ]; do
    $loadgen --targets "$targets" --secret "$secret" --seconds 60 --warmup 1 \
      --connections $per --conversation-size 100 --senders 1 --rate 20 --user-offset $((g * per)) \
      --label "cluster-capacity/generator-$g" >"$work/gen$g.json" 2>"$work/gen$g.err" &
    gen_pids="$gen_pids $!"
    g=$((g + 1))
  done
  # While the generators hold their connections: the most the hosts held at once.
  best=0
  while kill -0 $gen_pids 2>/dev/null; do
    sum=0
    for t in $(echo "$targets" | tr ',' ' '); do
      n=$(curl -s -m 2 "http://$t/metrics" | awk '/^switchboard_connections /{print $2}')
      sum=$((sum + ${n:-0}))
    done
    [ "$sum" -gt "$best" ] && best=$sum
    sleep 2
  done
  for p in $gen_pids; do wait "$p" || true; done
  print_generators "$generators"
  printf '{"label":"cluster-capacity/total","hosts":%s,"generators":%s,"offered_connections":%s,"max_connections_held":%s,"host_rss_kib":[%s]}\n' \
    $hosts $generators $((per * generators)) "$best" \
    "$(for p in $pids; do awk '/VmRSS/{print $2}' /proc/$p/status; done | paste -sd,)"
  stop_hosts
}

reconnect() {
  total=${1:-100000}
  hosts=${2:-6}
  generators=$hosts
  host_config reconnect nats "$DATABASE_URL"
  sed -i 's/^pool_size = 2/pool_size = 4/' "$work/reconnect.toml"
  start_hosts "$work/reconnect.toml" "$hosts"
  per=$((total / generators / 100 * 100))  # whole conversations of 100 per generator
  mkdir -p "$work/sync"
  gen_pids=
  g=0
  while [ $g -lt $generators ]; do
    $loadgen --targets "$targets" --secret "$secret" --connections $per --conversation-size 100 --senders 0 \
      --connect-concurrency 64 --reconnect --sync-dir "$work/sync" --user-offset $((offset + g * per)) \
      --label "cluster-reconnect/generator-$g" >"$work/gen$g.json" 2>"$work/gen$g.err" &
    gen_pids="$gen_pids $!"
    g=$((g + 1))
  done
  # All connected: drop together.
  for _ in $(seq 1200); do
    [ "$(ls "$work/sync" | grep -c '^ready-')" -ge $generators ] && break
    kill -0 $gen_pids 2>/dev/null || break
    sleep 0.5
  done
  touch "$work/sync/go"
  status=0
  for p in $gen_pids; do wait "$p" || status=1; done
  print_generators "$generators"
  # The storm as a whole: from the first drop to the last resume, over all generators.
  cat "$work"/gen*.json | /usr/bin/python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
first = min(r["dropped_wall_ms"] for r in runs)
last = max(r["last_resume_wall_ms"] for r in runs)
print(json.dumps({"label": "cluster-reconnect/total", "hosts": max(r["hosts"] for r in runs), "generators": len(runs),
                  "clients": sum(r["connections"] for r in runs), "resumed": sum(r["resumed"] for r in runs),
                  "not_recovered": sum(r["not_recovered"] for r in runs),
                  "failed_connects": sum(r["failed_connects"] for r in runs),
                  "reconnects_after_refusal": sum(r["reconnects_after_refusal"] for r in runs),
                  "subscribes_sent_again": sum(r["subscribes_sent_again"] for r in runs),
                  "drop_to_last_resume_seconds": (last - first) / 1000.0,
                  "first_connect_seconds_max": max(r["first_connect_seconds"] for r in runs)}))'
  stop_hosts
  return $status
}

"$mode" "$@"
