#!/usr/bin/env python3
"""Plots bench/run.sh's open-loop points — delivered messages/s and p99
latency against the offered load — for each server, as a PNG (gnuplot,
Debian's gnuplot-nox).
    bench/plot.py results.jsonl docs/benchmarks-load.png
Open-loop scenarios are `latency-50k`, `latency-100k` and `sweep-<offered>`
(offered deliveries/s); the median of the repetitions is plotted."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

SERVERS = ["switchboard", "switchboard-nofeatures", "node-ws", "nchan"]
TITLES = {"switchboard": "Switchboard, default config", "switchboard-nofeatures": "Switchboard, no features",
          "node-ws": "Node ws", "nchan": "nginx + nchan"}


def offered(scenario):
    if scenario.startswith("latency-") and scenario.endswith("k"):
        return int(scenario[len("latency-"):-1]) * 1000
    if scenario.startswith("sweep-"):
        return int(scenario[len("sweep-"):])
    return None


def main():
    source, png = sys.argv[1], sys.argv[2]
    points = defaultdict(lambda: defaultdict(list))  # server -> offered -> runs
    with open(source) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            server, _, scenario = r["label"].partition("/")
            load = offered(scenario)
            if load is not None and server in SERVERS:
                points[server][load].append(r)
    if not points:
        sys.exit("plot.py: no open-loop points in " + source)
    with tempfile.TemporaryDirectory() as tmp:
        plots_rate, plots_p99 = [], []
        for i, server in enumerate(s for s in SERVERS if s in points):
            data = os.path.join(tmp, server + ".dat")
            with open(data, "w") as out:
                for load in sorted(points[server]):
                    runs = points[server][load]
                    rate = statistics.median(r["delivered_per_s"] for r in runs)
                    p99 = statistics.median(r["latency_ms_p99"] for r in runs)
                    out.write(f"{load} {rate} {max(p99, 0.1)}\n")
            style = f"with linespoints lw 2 pt {i + 5} title '{TITLES[server]}'"
            plots_rate.append(f"'{data}' using ($1/1000):($2/1000) {style}")
            plots_p99.append(f"'{data}' using ($1/1000):3 {style}")
        script = f"""
set terminal pngcairo size 1200,500 font 'sans,10'
set output '{png}'
set multiplot layout 1,2 title 'Open loop: 10,000 connections, conversations of 100 (host and peers on one core)'
set grid
set key top left
set xlabel 'offered deliveries/s (thousands)'
set ylabel 'delivered/s (thousands)'
plot {', '.join(plots_rate)}, x title 'offered' dt 2 lc rgb 'gray'
set logscale y
set key top left
set ylabel 'p99 send-to-receive (ms, log)'
plot {', '.join(plots_p99)}, 20 title 'target: 20 ms' dt 2 lc rgb 'red'
unset multiplot
"""
        path = os.path.join(tmp, "plot.gp")
        with open(path, "w") as f:
            f.write(script)
        subprocess.run(["gnuplot", path], check=True)


if __name__ == "__main__":
    main()
