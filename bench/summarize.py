#!/usr/bin/env python3
"""Reads bench/run.sh's JSON lines on stdin; prints a markdown table of the
median of each (server, scenario) over the repetitions, with Switchboard's
ratio to the peer and the default config's to no features."""
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
    if label.startswith("ingest/"):
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
