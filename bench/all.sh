#!/bin/sh
# Every benchmark of docs/benchmarks.md in one command, on this machine:
# the fan-out, latency, sweep and connect-storm scenarios against Switchboard
# (default config and no features), Node ws and nginx + nchan (bench/run.sh);
# durable ingest on SQLite and PostgreSQL direct and pooled (bench/ingest.sh);
# the three-host cluster's persisted msgs/s and cross-host latency
# (bench/cluster.sh ingest, latency) and the six-host reconnect storm
# (bench/cluster.sh reconnect). Writes the raw JSON lines, the tables with the
# targets checked (bench/summarize.py) and the load plot (bench/plot.py):
#   bench/all.sh [seconds] [repetitions]        (defaults: 5 s, 3 repetitions)
#   -> bench/results/<date>-all.jsonl, bench/results/<date>-all.md, docs/benchmarks-load.png
#   RECONNECT_CLIENTS=30000 bench/all.sh 5 1    -> a shorter storm, one repetition
# About 30 minutes with the defaults on the 2-core machine.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-5}
repetitions=${2:-3}
out=${OUT:-bench/results/$(date +%F)-all}
./scripts/build.sh >/dev/null
: >"$out.jsonl"
bench/run.sh "$seconds" "$repetitions" >>"$out.jsonl"
bench/ingest.sh "$seconds" "$repetitions" >>"$out.jsonl"
bench/cluster.sh ingest "$seconds" "$repetitions" >>"$out.jsonl"
bench/cluster.sh latency "$seconds" "$repetitions" >>"$out.jsonl"
bench/cluster.sh reconnect "${RECONNECT_CLIENTS:-100000}" 6 >>"$out.jsonl"
bench/summarize.py <"$out.jsonl" >"$out.md"
bench/plot.py "$out.jsonl" docs/benchmarks-load.png
cat "$out.md"
