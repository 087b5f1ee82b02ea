#!/usr/bin/env python3
"""Reads the JSON lines of bench/run.sh, bench/ingest.sh and bench/cluster.sh
on stdin; prints markdown tables of the median of each (server, scenario) over
the repetitions, Switchboard's ratio to the peers and the default config's to
no features, and — when the input has them — the issue's targets against what
was measured (bench/all.sh runs everything)."""
import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        runs[r["label"]].append(r)


def median(label, key):
    values = [r[key] for r in runs.get(label, [])]
    return statistics.median(values) if values else float("nan")


scenarios = []
connects = []
for label in runs:
    if label.startswith(("ingest/", "cluster-")):
        continue
    name = label.split("/", 1)[1]
    group = connects if name.startswith("connect-") else scenarios
    if name not in group:
        group.append(name)

ingest = [label for label in runs if label.startswith("ingest/")]
if ingest:
    print("| ingest: storage | acknowledged sends/s | p50 ms | p99 ms | runs |")
    print("|---|---:|---:|---:|---:|")
    for label in ingest:
        print(f"| {label.split('/', 1)[1]} | {median(label, 'sends_acked_per_s'):,.0f} | {median(label, 'latency_ms_p50'):.1f} "
              f"| {median(label, 'latency_ms_p99'):.1f} | {len(runs[label])} |")
    print()

if connects:
    print("| scenario | server | connects/s, to hello | connect seconds | runs |")
    print("|---|---|---:|---:|---:|")
    for name in connects:
        for server in ("switchboard", "switchboard-nofeatures", "node-ws", "nchan"):
            label = f"{server}/{name}"
            if label in runs:
                print(f"| {name} | {server} | {median(label, 'connects_per_s'):,.0f} | {median(label, 'connect_seconds'):.2f} "
                      f"| {len(runs[label])} |")
    print()

if scenarios:
    print("| scenario | server | delivered msgs/s | p50 ms | p99 ms | max ms | idle bytes/conn | runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
for name in scenarios:
    for server in ("switchboard", "switchboard-nofeatures", "node-ws", "nchan"):
        label = f"{server}/{name}"
        if label not in runs:
            continue
        idle = median(label, 'server_idle_bytes_per_connection')
        print(f"| {name} | {server} | {median(label, 'delivered_per_s'):,.0f} | {median(label, 'latency_ms_p50'):.1f} "
              f"| {median(label, 'latency_ms_p99'):.1f} | {median(label, 'latency_ms_max'):.1f} "
              f"| {f'{idle:,.0f}' if idle > 0 else 'n/a'} | {len(runs[label])} |")
print()
for name in scenarios:
    for peer_name in ("node-ws", "nchan"):
        sb, peer = f"switchboard/{name}", f"{peer_name}/{name}"
        if sb in runs and peer in runs:
            ratio = median(sb, "delivered_per_s") / median(peer, "delivered_per_s")
            mem = median(peer, "server_idle_bytes_per_connection") / median(sb, "server_idle_bytes_per_connection")
            memory = f"; {peer_name} uses {mem:.1f}x its idle memory per connection" if mem > 0 else ""
            print(f"- {name}: Switchboard (default config) delivers {ratio:.1f}x {peer_name}'s messages/s{memory}.")
for name in scenarios:
    sb, bare = f"switchboard/{name}", f"switchboard-nofeatures/{name}"
    if sb in runs and bare in runs:
        ratio = median(sb, "delivered_per_s") / median(bare, "delivered_per_s")
        print(f"- {name}: the default config (four features) delivers {ratio:.0%} of what no features does.")


def have(label):
    return label in runs


cluster_shapes = [("single", "one host (peer), bus-gochannel, PostgreSQL direct"),
                  ("nats", "three hosts, bus-nats, PostgreSQL direct"),
                  ("sql", "three hosts, bus-sql, all through PgBouncer")]
if any(have(f"cluster-{k}/ingest") for k, _ in cluster_shapes):
    print()
    print("| cluster shape | persisted msgs/s | p99 ms (closed loop) | at half that rate: p50 ms | p99 ms | runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, title in cluster_shapes:
        ing, half = f"cluster-{key}/ingest", f"cluster-{key}/latency-at-half"
        if have(ing):
            print(f"| {title} | {median(ing, 'sends_acked_per_s'):,.0f} | {median(ing, 'latency_ms_p99'):.1f} "
                  f"| {median(half, 'latency_ms_p50'):.1f} | {median(half, 'latency_ms_p99'):.1f} | {len(runs[ing])} |")
latency_labels = [label for label in runs if label.startswith("cluster-") and "/latency-" in label
                  and not label.endswith("/latency-at-half")]
if latency_labels:
    print()
    print("| cluster shape, offered msgs/s | cross-host p50 ms | p99 ms | delivered/s | runs |")
    print("|---|---:|---:|---:|---:|")
    for label in latency_labels:
        print(f"| {label} | {median(label, 'latency_ms_p50'):.1f} | {median(label, 'latency_ms_p99'):.1f} "
              f"| {median(label, 'delivered_per_s'):,.0f} | {len(runs[label])} |")
if have("cluster-reconnect/total"):
    print()
    print("| reconnect storm | clients | hosts | drop to last resume, s | resumed | not recovered | first connect, s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs["cluster-reconnect/total"]:
        print(f"| all dropped at once | {r['clients']:,} | {r['hosts']} | {r['drop_to_last_resume_seconds']:.1f} "
              f"| {r['resumed']:,} | {r['not_recovered']} | {r['first_connect_seconds_max']:.1f} |")

# The targets of issue 11, from whatever the input measured.
checks = []


def verdict(ok):
    return "met" if ok else "**not met**"


def idle_bytes(labels):
    """The idle bytes per connection of these runs (-1: not measured)."""
    return [r["server_idle_bytes_per_connection"] for label in labels for r in runs.get(label, [])
            if r["server_idle_bytes_per_connection"] > 0]


def check(target, label, key, ok, fmt="{:,.0f}"):
    if have(label):
        v = median(label, key)
        checks.append((target, fmt.format(v), "" if ok is None else verdict(ok(v))))


def ratio(scenario):
    a, b = f"switchboard/{scenario}", f"switchboard-nofeatures/{scenario}"
    if have(a) and have(b):
        r = median(a, "delivered_per_s") / median(b, "delivered_per_s")
        checks.append((f"{scenario}: default config within 10 % of no features", f"{r:.0%}",
                       verdict(r >= 0.9)))


check("fan-out-1k ≥ 2,000,000 deliveries/s", "switchboard/fanout-1k", "delivered_per_s", lambda v: v >= 2e6)
for scenario in ("fanout-1k", "fanout-10k"):
    ratio(scenario)
check("p99 ≤ 20 ms at 100,000 deliveries/s offered (ms)", "switchboard/latency-100k", "latency_ms_p99",
      lambda v: v <= 20, "{:.1f}")
check("ingest ≥ 50,000/s, SQLite normal", "ingest/sqlite-normal", "sends_acked_per_s", lambda v: v >= 50000)
check("ingest, SQLite synchronous = full (no target: what it gives)", "ingest/sqlite-full", "sends_acked_per_s", None)
check("ingest ≥ 50,000/s, PostgreSQL direct", "ingest/postgres-direct", "sends_acked_per_s", lambda v: v >= 50000)
check("ingest ≥ 30,000/s, PostgreSQL through PgBouncer", "ingest/postgres-pgbouncer", "sends_acked_per_s",
      lambda v: v >= 30000)
check("cluster (bus-nats) ≥ 30,000 persisted msgs/s", "cluster-nats/ingest", "sends_acked_per_s", lambda v: v >= 30000)
check("cluster (bus-nats) cross-host p99 ≤ 20 ms at half that rate (ms)", "cluster-nats/latency-at-half",
      "latency_ms_p99", lambda v: v <= 20, "{:.1f}")
check("cluster (bus-sql via PgBouncer) ≥ 30,000 persisted msgs/s", "cluster-sql/ingest", "sends_acked_per_s",
      lambda v: v >= 30000)
check("cluster (bus-sql) cross-host p99 ≤ 20 ms at half that rate (ms)", "cluster-sql/latency-at-half",
      "latency_ms_p99", lambda v: v <= 20, "{:.1f}")
check("≥ 10,000 authenticated connects/s per host core", "switchboard/connect-10k", "connects_per_s",
      lambda v: v >= 10000)
if have("cluster-reconnect/total"):
    storms = runs["cluster-reconnect/total"]
    r = storms[-1]
    seconds = median("cluster-reconnect/total", "drop_to_last_resume_seconds")
    done = all(s["resumed"] == s["clients"] and s["not_recovered"] == 0 for s in storms)
    checks.append((f"{r['clients']:,} clients over {r['hosts']} hosts reconnect and resume in ≤ 30 s",
                   f"{seconds:.1f} s", verdict(done and seconds <= 30)))
idle = [f"switchboard/{s}" for s in ("fanout-10k", "latency-50k", "latency-100k") if have(f"switchboard/{s}")]
if idle:
    values = idle_bytes(idle)
    v = statistics.median(values) if values else float("nan")
    checks.append(("idle memory ≤ 1.5 KiB (1,536 bytes) per connection, 10,000 connections", f"{v:,.0f} bytes",
                   verdict(v <= 1536)))
    bare = idle_bytes(label.replace("switchboard/", "switchboard-nofeatures/") for label in idle)
    if bare:
        b = statistics.median(bare)
        checks.append(("idle memory, default config within 10 % of no features", f"{v / b:.0%}",
                       verdict(v <= 1.1 * b)))
if checks:
    print()
    print("| target | measured (median) | |")
    print("|---|---:|---|")
    for target, value, result in checks:
        print(f"| {target} | {value} | {result} |")
