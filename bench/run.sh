#!/bin/sh
# Runs the benchmark scenarios against Switchboard — with the default
# config's four features (what users run) and with none — and two peers, the
# Node ws server and nginx + nchan, in one run, on this machine: the server
# under test pinned to core 0, the load generator to core 1. Prints one JSON
# line per scenario and server.
#   bench/run.sh [seconds] [repetitions]   (defaults: 10 s measured, 1 repetition)
#   bench/run.sh 10 3 > r.jsonl; bench/summarize.py < r.jsonl   -> the table in docs/benchmarks.md
#   bench/plot.py r.jsonl docs/benchmarks-load.png              -> its plot
#   TARGETS="switchboard switchboard-nofeatures" SCENARIOS="fanout-10k" bench/run.sh 5 1
#                                                  -> a subset, for an A/B while working
#   BENCH_BUILD=/tmp/ab/before bench/run.sh ...    -> the same with another build (its bin/, lib/)
# Needs: a build (scripts/build.sh), `scripts/install-deps.sh --bench` (Node.js
# and npm, nginx-light and libnginx-mod-nchan), and the Node peer's `ws` (it is
# installed into bench/peers/node-ws/node_modules on first use, with npm ci from
# package-lock.json).
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-10}
repetitions=${2:-1}
build=${BENCH_BUILD:-build}  # another build of the same tree, for an A/B
loadgen=$build/bin/switchboard-loadgen
[ -x "$loadgen" ] || cmake --build $build
./scripts/install-deps.sh --bench
# The peer's dependencies, exactly as package-lock.json pins them.
[ -d bench/peers/node-ws/node_modules/ws ] || (cd bench/peers/node-ws && npm ci --no-audit --no-fund >/dev/null)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
server=

cat >"$work/switchboard.toml" <<TOML
[server]
listen = "127.0.0.1:0"
threads = 1                      # one core: the host is pinned to core 0
commands_per_second = 1000000    # the generator's senders are not rate limited
command_burst = 1000000
[auth]
algorithm = "HS256"
secret = "bench-secret-0123456789"
[log]
level = "info"
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "$work/switchboard.db"
synchronous = "normal"           # durable across a crash; no fsync per commit
TOML

# with_features NAME FEATURE...: the config without features plus these, as NAME.
with_features() {
  name=$1
  shift
  cp "$work/switchboard-nofeatures.toml" "$work/$name.toml"
  for feature in "$@"; do
    printf '[[features]]\nplugin = "feature-%s"\n' "$feature" >>"$work/$name.toml"
  done
}
cp "$work/switchboard.toml" "$work/switchboard-nofeatures.toml"
# The default config's features, as config/switchboard.toml enables them.
with_features switchboard reactions pins typing receipts
# For an A/B only (TARGETS=switchboard-nopush): the default config without
# receipts' unread.update pushes (and so without their counts). The table
# below is feature-receipts' config because receipts is the last [[features]].
with_features switchboard-nopush reactions pins typing receipts
printf '[features.config]\nunread_push_max_members = 0\n' >>"$work/switchboard-nopush.toml"
# For an A/B only: which feature costs what (TARGETS=switchboard-noreceipts,
# the default config without receipts; switchboard-onlyreceipts, receipts alone).
with_features switchboard-noreceipts reactions pins typing
with_features switchboard-onlyreceipts receipts

start_switchboard() {  # $1: the config (switchboard or switchboard-nofeatures)
  rm -f "$work"/switchboard.db*
  taskset -c 0 $build/bin/switchboard serve --config "$work/$1.toml" >"$work/host.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    port=$(grep -o 'listening address=127.0.0.1:[0-9]*' "$work/host.log" | cut -d: -f2 || true)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  cat "$work/host.log" >&2
  exit 1
}

start_peer() {
  PORT=8090 taskset -c 0 node bench/peers/node-ws/server.js >"$work/peer.log" 2>&1 &
  server=$!
  port=8090
  for _ in $(seq 100); do
    grep -q listening "$work/peer.log" && return 0
    sleep 0.1
  done
  exit 1
}

start_nchan() {
  mkdir -p "$work/nchan"
  sed -e "s|@PREFIX@|$work/nchan|g" -e "s|@PORT@|8091|g" bench/peers/nchan/nginx.conf.in >"$work/nchan/nginx.conf"
  taskset -c 0 nginx -p "$work/nchan" -c "$work/nchan/nginx.conf" >"$work/nchan.log" 2>&1 &
  server=$!
  port=8091
  for _ in $(seq 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
      rss_pid=$(pgrep -P "$server" | head -1)  # the worker holds the connections, not the master
      return 0
    fi
    sleep 0.1
  done
  cat "$work/nchan.log" "$work/nchan/error.log" >&2
  exit 1
}

stop() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=; }

targets=${TARGETS:-switchboard switchboard-nofeatures node-ws nchan}
scenarios=${SCENARIOS:-all}

scenario() {  # label, then loadgen arguments
  label=$1
  shift
  case " $scenarios " in *" $label "*|" all ") ;; *) return 0 ;; esac
  for target in $targets; do
    rss_pid=
    case $target in
      node-ws) start_peer; extra="--peer" ;;
      nchan) start_nchan; extra="--nchan" ;;
      *) start_switchboard $target; extra="" ;;
    esac
    taskset -c 1 $loadgen --port "$port" --server-pid "${rss_pid:-$server}" --seconds "$seconds" --warmup 2 \
      --label "$target/$label" $extra "$@"
    stop
  done
}

for _ in $(seq "$repetitions"); do
  scenario fanout-1k    --connections 1000  --conversation-size 100 --senders 10 --window 8
  scenario fanout-10k   --connections 10000 --conversation-size 100 --senders 1  --window 4
  scenario latency-50k  --connections 10000 --conversation-size 100 --senders 1  --rate 500
  scenario latency-100k --connections 10000 --conversation-size 100 --senders 1  --rate 1000
done
# A connect storm: 10,000 authenticated connections, 64 upgrades in flight,
# timed from the first connect to the last hello (connects_per_s).
for _ in $(seq "$repetitions"); do
  scenario connect-10k --connections 10000 --conversation-size 100 --senders 0 --connect-concurrency 64 --warmup 0 --seconds 1
done
# More open-loop points for the plot (bench/plot.py), once: with latency-50k
# and latency-100k, offered load from 25K to 400K deliveries/s.
for rate in 250 2000 4000; do
  scenario "sweep-$((rate * 100))" --connections 10000 --conversation-size 100 --senders 1 --rate "$rate"
done
