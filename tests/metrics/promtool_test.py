#!/usr/bin/python3
"""/metrics passes `promtool check metrics`, plugin metrics are namespaced, and the
example Grafana dashboard only queries metrics the host really exposes.

Starts the real host three times, each with a different plugin set, so that every
in-tree plugin's metrics appear once:
  default   bus-gochannel + storage-sqlite + the four features (config/switchboard.toml's set)
  cluster   bus-nats (a real nats-server, started here) + storage-postgres + the four features
  sql-bus   bus-sql (its SQLite backend) + storage-sqlite
drives traffic through each with python3-websockets and REST (so counters and
histograms have values), fetches /metrics and:
  - runs `promtool check metrics` on it: any problem it reports, lint included, fails;
  - checks that each metric not exposed by every host starts with
    switchboard_<plugin>_ for one of the host's loaded plugins (`-` as `_`);
  - checks that the dashboard's queries reference only names found in some output.

storage-postgres needs a real PostgreSQL: without DATABASE_URL the script runs itself
again under tests/servers/with-postgres.sh, which starts one.

usage: promtool_test.py SWITCHBOARD_BINARY [DASHBOARD_JSON]
"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
SECRET = "metrics-test-secret-0123456789"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"  # /usr/sbin is not on every PATH
FEATURES = ["feature-reactions", "feature-pins", "feature-typing", "feature-receipts"]
failures = []


def fail(what):
    failures.append(what)
    print(f"FAIL: {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """The real switchboard binary, serving a config written for it."""

    def __init__(self, binary, workdir, name, bus, storage, features):
        self.binary, self.name = binary, name
        self.plugins = [bus[0], storage[0]] + features
        self.config = os.path.join(workdir, f"{name}.toml")
        text = f'[server]\nlisten = "127.0.0.1:0"\nthreads = 2\n[auth]\nsecret = "{SECRET}"\n'
        text += f'[bus]\nplugin = "{bus[0]}"\n[bus.config]\n{bus[1]}\n'
        text += f'[storage]\nplugin = "{storage[0]}"\n[storage.config]\n{storage[1]}\n'
        for feature in features:
            text += f'[[features]]\nplugin = "{feature}"\n'
        with open(self.config, "w") as f:
            f.write(text)
        self.lines = []
        self.process = subprocess.Popen([binary, "serve", "--config", self.config], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.port = None
        found = threading.Event()

        def drain():  # keeps reading, so that the host never blocks on a full pipe
            for line in self.process.stdout:
                self.lines.append(line)
                match = re.search(r"listening address=127\.0\.0\.1:(\d+)", line)
                if match and self.port is None:
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        if not found.wait(30) or self.port is None:
            self.stop()
            raise RuntimeError(f"host {name} did not start:\n" + "".join(self.lines[-30:]))

    def token(self, user):
        return subprocess.check_output([self.binary, "token", "--config", self.config, "--user", user], text=True,
                                       timeout=30).strip()

    def http(self, method, path, token=None, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode())
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                fail(f"host {self.name} did not stop within 20 s of SIGTERM")
        self.reader.join(timeout=5)
        return self.process.returncode


class Client:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 1

    @classmethod
    async def connect(cls, port, token):
        client = cls(await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}"))
        while (await client.frame())["type"] != "hello":
            pass
        return client

    async def frame(self):
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))

    async def command(self, type_, **fields):
        cid = f"m-{self.next_id}"
        self.next_id += 1
        await self.ws.send(json.dumps({"id": cid, "type": type_, **fields}))
        while True:
            f = await self.frame()
            if f["type"] in ("ack", "error") and f.get("id") == cid:
                if f["type"] == "error":
                    raise AssertionError(f"{type_}: {f['code']}: {f['message']}")
                return f["result"]


async def traffic(host, features):
    alice = await Client.connect(host.port, host.token("alice"))
    bob = await Client.connect(host.port, host.token("bob"))
    conv = (await alice.command("conversation.create", kind="group", name="metrics", members=["bob"]))["conversation"]
    sent = []
    for i in range(20):
        sent.append(await alice.command("message.send", conversation_id=conv["id"], text=f"hello {i}"))
        await bob.command("message.send", conversation_id=conv["id"], text=f"hi {i}")
    first = sent[0]["message"]["id"]
    if "feature-reactions" in features:
        await bob.command("reaction.add", message_id=first, emoji="👍")
        await bob.command("reaction.remove", message_id=first, emoji="👍")
        await bob.command("reaction.add", message_id=first, emoji="🎉")
    if "feature-pins" in features:
        await alice.command("pin.add", message_id=first)
    if "feature-typing" in features:
        await bob.command("typing.start", conversation_id=conv["id"])
        await bob.command("typing.stop", conversation_id=conv["id"])
    if "feature-receipts" in features:
        await bob.command("read", conversation_id=conv["id"], seq=sent[-1]["seq"])
        await bob.command("unread")
    await bob.command("history", conversation_id=conv["id"], limit=50)
    await alice.command("message.edit", message_id=first, text="edited")
    await alice.ws.close()
    await bob.ws.close()
    return conv["id"]


def rest_traffic(host, conversation):
    token = host.token("alice")
    for expect, method, path, tok, body in [
            (200, "GET", "/conversations", token, None),
            (201, "POST", f"/conversations/{conversation}/messages", token, {"text": "over REST"}),
            (200, "GET", f"/conversations/{conversation}/messages?limit=10", token, None),
            (401, "GET", "/conversations", "not-a-token", None),
            (200, "GET", "/health", None, None)]:
        status, _, text = host.http(method, path, tok, body)
        if status != expect:
            fail(f"{host.name}: {method} {path} answered {status}, expected {expect}: {text[:200]}")


def parse(text):
    """{family: type}, {series name: value} of a text exposition (no labels but le)."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, type_ = line.split(" ", 3)
            types[name] = type_
        elif line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            name = name_labels.split("{", 1)[0]
            if "{" not in name_labels:
                samples[name] = float(value)
            else:
                samples.setdefault(name, float(value))
    return types, samples


def promtool(name, text):
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    report = (check.stdout + check.stderr).strip()
    if check.returncode != 0 or report:
        fail(f"{name}: promtool check metrics exited {check.returncode}:\n{report}")
    else:
        print(f"ok: {name}: promtool check metrics is clean ({text.count('# TYPE ')} metrics)", flush=True)


def dashboard_metrics(path):
    """Every switchboard_* name in the dashboard's queries (targets and variables)."""
    with open(path) as f:
        board = json.load(f)
    exprs = []

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("expr", "query", "definition"):
            exprs.append(node)

    walk(board)
    names = set()
    for expr in exprs:
        names.update(re.findall(r"\bswitchboard_[A-Za-z0-9_]+", expr))
    return board, exprs, names


def run(binary, dashboard):
    workdir = tempfile.mkdtemp(prefix="switchboard-metrics-")
    nats = None
    outputs = {}
    try:
        nats_port = free_port()
        nats = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(nats_port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", nats_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or nats.poll() is not None:
                    raise RuntimeError("nats-server did not start")
                time.sleep(0.05)
        shapes = [
            ("default", ("bus-gochannel", ""), ("storage-sqlite", f'path = "{workdir}/default.db"'), FEATURES),
            ("cluster", ("bus-nats", f'url = "nats://127.0.0.1:{nats_port}"'),
             ("storage-postgres", f'url = "{os.environ["DATABASE_URL"]}"'), FEATURES),
            ("sql-bus", ("bus-sql", f'backend = "sqlite"\npath = "{workdir}/bus.db"\npoll_interval_ms = 20'),
             ("storage-sqlite", f'path = "{workdir}/sql-bus.db"'), []),
        ]
        for name, bus, storage, features in shapes:
            started = time.monotonic()
            host = Host(binary, workdir, name, bus, storage, features)
            try:
                conversation = asyncio.run(asyncio.wait_for(traffic(host, features), 60))
                rest_traffic(host, conversation)
                time.sleep(0.3)  # bus deliveries and batch commits settle
                status, headers, text = host.http("GET", "/metrics")
                if status != 200 or not headers.get("Content-Type", "").startswith("text/plain"):
                    fail(f"{name}: GET /metrics answered {status} {headers.get('Content-Type')}")
                outputs[name] = (host.plugins, text)
            finally:
                code = host.stop()
            if code != 0:
                fail(f"host {name} exited {code} after SIGTERM:\n" + "".join(host.lines[-30:]))
            print(f"ok: host {name} ({', '.join(host.plugins)}) served traffic in "
                  f"{time.monotonic() - started:.1f} s", flush=True)
    finally:
        if nats:
            nats.terminate()
            nats.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    families = {}  # family -> type, over every host
    series = set()
    per_host = {}
    for name, (plugins, text) in outputs.items():
        promtool(name, text)
        types, samples = parse(text)
        families.update(types)
        series.update(samples)
        per_host[name] = (plugins, types, samples)

    # Traffic really reached the counters and histograms.
    expect_positive = {
        "default": ["switchboard_frames_in_total", "switchboard_frames_out_total",
                    "switchboard_messages_persisted_total", "switchboard_fanout_deliveries_total",
                    "switchboard_storage_write_seconds_count", "switchboard_bus_publish_seconds_count",
                    "switchboard_http_requests_total", "switchboard_unauthorized_total",
                    "switchboard_storage_sqlite_commit_seconds_count", "switchboard_storage_sqlite_batches_total",
                    "switchboard_bus_gochannel_delivered_total", "switchboard_feature_reactions_changed_total"],
        "cluster": ["switchboard_storage_postgres_writer_seconds_count",
                    "switchboard_storage_postgres_reader_seconds_count", "switchboard_messages_persisted_total"],
        "sql-bus": ["switchboard_bus_sql_published_total", "switchboard_bus_sql_delivered_total"],
    }
    for name, wanted in expect_positive.items():
        if name not in per_host:
            continue
        samples = per_host[name][2]
        for metric in wanted:
            if samples.get(metric, 0) <= 0:
                fail(f"{name}: {metric} is {samples.get(metric, 'absent')} after the traffic")

    # Plugin metrics are namespaced: what not every host exposes belongs to a plugin.
    if len(per_host) == 3:
        common = set.intersection(*(set(t) for _, t, _ in per_host.values()))
        for name, (plugins, types, _) in per_host.items():
            prefixes = ["switchboard_" + re.sub(r"[^A-Za-z0-9_]", "_", p) + "_" for p in plugins]
            for family in sorted(set(types) - common):
                if not any(family.startswith(prefix) for prefix in prefixes):
                    fail(f"{name}: {family} is neither a host metric nor in a loaded plugin's namespace "
                         f"({', '.join(prefixes)})")
        print(f"ok: {len(common)} host metrics; plugin metrics: "
              f"{', '.join(sorted(set(families) - common))}", flush=True)

    if dashboard:
        board, exprs, names = dashboard_metrics(dashboard)
        if not exprs:
            fail(f"{dashboard}: no queries found")
        known = set(families) | series
        for metric in sorted(names):
            if metric not in known:
                fail(f"{dashboard}: queries {metric}, which no host exposes")
        for panel in board.get("panels", []):
            if panel.get("type") != "row" and not any(t.get("expr") for t in panel.get("targets", [])):
                fail(f"{dashboard}: panel {panel.get('title')!r} has no query")
        unused = sorted(set(families) - {re.sub(r"_(bucket|sum|count)$", "", n) for n in names} - names)
        print(f"ok: the dashboard's {len(exprs)} queries reference {len(names)} names, all exposed"
              + (f"; not on it: {', '.join(unused)}" if unused else ""), flush=True)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    if not os.environ.get("DATABASE_URL"):
        wrapper = os.path.join(SOURCE, "tests", "servers", "with-postgres.sh")
        os.execv(wrapper, [wrapper, sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    for tool in (shutil.which("promtool"), NATS_SERVER):
        if not tool or not os.access(tool, os.X_OK):
            print(f"FAIL: promtool or nats-server not found ({tool})", file=sys.stderr)
            return 1
    started = time.monotonic()
    try:
        run(os.path.abspath(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
    except Exception as e:  # noqa: BLE001 — any error is a failure, told plainly
        fail(f"{type(e).__name__}: {e}")
    if failures:
        print(f"{len(failures)} problem(s), {time.monotonic() - started:.1f} s", file=sys.stderr)
        return 1
    print(f"PASS: /metrics is promtool-clean and namespaced ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
