#!/usr/bin/python3
"""Live feature reload through the real binary: 200 clients chat in ten
groups while the config file is edited and SIGHUP sent. feature-pins is
added and works on the sessions already open; feature-reactions is removed
and its commands answer unknown_type while the reactions stored stay in
history; a feature's config changes and applies; a broken file and a
storage change are refused with the reason and change nothing. Throughout,
no connection drops and every acknowledged message reaches every member.

usage: reload_test.py SWITCHBOARD_BINARY TEST_PLUGIN_DIR
"""
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from host_process import Host, hs256_token

SECRET = "reload-test-secret-0123456789"
USERS = 200
GROUPS = 10
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    else:
        print(f"ok: {what}", flush=True)


def token(user):
    return hs256_token(user, SECRET)


def free_port():
    """A port free a moment ago: the CLI finds the host at its [server] listen."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


def config(workdir, features, storage_path=None):
    blocks = ""
    for plugin, table in features:
        blocks += f'\n[[features]]\nplugin = "{plugin}"\n'
        if table:
            blocks += "[features.config]\n" + "".join(f"{k} = {v}\n" for k, v in table.items())
    return f"""
[server]
listen = "127.0.0.1:{PORT}"
admin_api = true
commands_per_second = 5000
command_burst = 5000
[auth]
algorithm = "HS256"
secret = "{SECRET}"
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "{storage_path or workdir + '/switchboard.db'}"
{blocks}"""


class Client:
    """One user's WebSocket session: commands by id, events recorded."""

    def __init__(self, user):
        self.user = user
        self.next_id = 0
        self.waiting = {}
        self.got = set()  # message ids of message.new received
        self.closed = None

    async def open(self, port):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token(self.user)}", max_size=None,
                                           ping_interval=None)
        hello = json.loads(await self.ws.recv())
        assert hello["type"] == "hello", hello
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") in ("ack", "error") and frame.get("id") in self.waiting:
                    self.waiting.pop(frame["id"]).set_result(frame)
                elif frame.get("type") == "message.new":
                    self.got.add(frame["message"]["id"])
        except websockets.ConnectionClosed:
            pass
        self.closed = f"{self.ws.close_code} {self.ws.close_reason}"

    async def command(self, type_, **fields):
        self.next_id += 1
        cid = f"{self.user}-{self.next_id}"
        future = asyncio.get_running_loop().create_future()
        self.waiting[cid] = future
        await self.ws.send(json.dumps({"id": cid, "type": type_, **fields}))
        return await asyncio.wait_for(future, 30)


async def cli(binary, *args):
    """Runs the switchboard CLI without blocking the clients' event loop."""
    return await asyncio.to_thread(subprocess.run, [binary, *args], capture_output=True, text=True, timeout=60)


def admin_status(port, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/reload", data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def chat(clients, groups, acked, stop):
    """Each client sends into its group about every 300 ms until `stop`."""

    async def one(i, c):
        conversation, _ = groups[i % GROUPS]
        n = 0
        while not stop.is_set():
            n += 1
            r = await c.command("message.send", conversation_id=conversation, text=f"{c.user} says {n}")
            if r["type"] == "ack":
                acked.append((conversation, r["result"]["message"]["id"]))
            else:
                failures.append(f"message.send refused: {r}")
            await asyncio.sleep(0.3)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))


async def main(binary, test_plugins):
    workdir = tempfile.mkdtemp(prefix="sb-reload-")
    path = os.path.join(workdir, "switchboard.toml")
    base = [("feature-reactions", None), ("feature-typing", None), ("feature-receipts", None)]

    def write(text):
        with open(path + ".new", "w") as f:
            f.write(text)
        os.replace(path + ".new", path)

    write(config(workdir, base))
    host = Host(binary, path)
    try:
        clients = [Client(f"u{i}") for i in range(USERS)]
        for c in clients:
            await c.open(host.port)
        groups = []
        for g in range(GROUPS):
            members = [clients[i] for i in range(USERS) if i % GROUPS == g]
            r = await members[0].command("conversation.create", kind="group", name=f"g{g}",
                                         members=[m.user for m in members[1:]])
            groups.append((r["result"]["conversation"]["id"], members))
        owner = groups[0][1][0]  # creator of g0: may pin
        conv0 = groups[0][0]

        acked = []
        stop = asyncio.Event()
        chatting = asyncio.create_task(chat(clients, groups, acked, stop))
        await asyncio.sleep(1)

        first = (await owner.command("message.send", conversation_id=conv0, text="react to me"))["result"]["message"]
        r = await owner.command("reaction.add", message_id=first["id"], emoji="👍")
        check(r["type"] == "ack", "reactions work before any reload")
        r = await owner.command("pin.add", message_id=first["id"])
        check(r["type"] == "error" and r.get("code") == "unknown_type", "pin.add is unknown before pins are added")

        # 1. Add feature-pins: it works on the sessions already open.
        write(config(workdir, base + [("feature-pins", None)]))
        await asyncio.sleep(0.3)  # chat goes on across each reload
        line = await asyncio.to_thread(host.reload, r"reload (applied|refused)")
        check("reload applied" in line and "+feature-pins" in line, f"adding feature-pins is applied ({line.strip()})")
        pinned = []
        for text in ("pin one", "pin two"):
            m = (await owner.command("message.send", conversation_id=conv0, text=text))["result"]["message"]
            r = await owner.command("pin.add", message_id=m["id"])
            check(r["type"] == "ack", f"pin.add works on a session opened before the reload ({text})")
            pinned.append(m["id"])
        metrics = await asyncio.to_thread(host.metrics)
        check(re.search(r'^switchboard_plugins\{kind="feature",name="feature-pins",version="[^"]+"\} 1$', metrics, re.M)
              is not None, "/metrics lists feature-pins among the loaded plugins")

        # 2. Remove feature-reactions, through the CLI this time: a dry run
        # first (`check --running`), then `switchboard reload`.
        no_reactions = [("feature-typing", None), ("feature-receipts", None), ("feature-pins", None)]
        write(config(workdir, no_reactions))
        await asyncio.sleep(0.3)  # chat goes on across each reload
        dry = await cli(binary, "check", "--config", path, "--running")
        check(dry.returncode == 0 and "a reload would apply: features: -feature-reactions" in dry.stdout,
              f"check --running says what a reload would do ({dry.stdout.strip()} {dry.stderr.strip()})")
        r = await owner.command("reaction.add", message_id=first["id"], emoji="🚀")
        check(r["type"] == "ack", "a dry run changes nothing (reactions still work)")
        applied = await cli(binary, "reload", "--config", path)
        check(applied.returncode == 0 and "reload applied: features: -feature-reactions" in applied.stdout,
              f"switchboard reload applies it ({applied.stdout.strip()} {applied.stderr.strip()})")
        other = os.path.join(workdir, "other.toml")
        with open(other, "w") as f:
            f.write(config(workdir, base))
        wrong = await cli(binary, "reload", "--config", other)
        check(wrong.returncode == 1 and f"this host runs with {path}, not {other}" in wrong.stderr,
              f"reload of another file than the host's is refused ({wrong.stderr.strip()})")
        for headers, who in (({"X-Switchboard-Admin": "reload", "X-Forwarded-For": "203.0.113.9"}, "through a proxy"),
                             ({"X-Switchboard-Admin": "reload", "Origin": "http://evil.example"}, "from a web page"),
                             ({}, "without X-Switchboard-Admin")):
            status = await asyncio.to_thread(admin_status, PORT, headers)
            check(status == 403, f"POST /admin/reload {who} is refused ({status})")
        r = await owner.command("reaction.add", message_id=first["id"], emoji="🎉")
        check(r["type"] == "error" and r.get("code") == "unknown_type",
              "reaction.add answers unknown_type once reactions are removed")
        page = (await owner.command("history", conversation_id=conv0, limit=200))["result"]
        check(any(e["type"] == "reaction.add" and e.get("emoji") == "👍" for e in page["events"]),
              "the reaction stored before the removal is still in history")

        # 3. Reconfigure feature-pins: max_pins = 2 applies (two are pinned).
        write(config(workdir, [("feature-typing", None), ("feature-receipts", None), ("feature-pins", {"max_pins": 2})]))
        await asyncio.sleep(0.3)  # chat goes on across each reload
        line = await asyncio.to_thread(host.reload, r"reload (applied|refused)")
        check("reload applied" in line and "feature-pins" in line, f"reconfiguring feature-pins is applied ({line.strip()})")
        third = (await owner.command("message.send", conversation_id=conv0, text="pin three"))["result"]["message"]
        r = await owner.command("pin.add", message_id=third["id"])
        check(r["type"] == "error" and r.get("code") == "limit_reached", f"the new max_pins applies ({r})")

        # A feature that cannot start: refused, the running set stays.
        write(config(workdir, [("feature-typing", None), ("feature-receipts", None), ("feature-pins", {"max_pins": 2}),
                               (f"{test_plugins}/test-echo-feature.so", {"fail_start": "true"})]))
        line = await asyncio.to_thread(host.reload, r"reload (applied|refused)")
        check("reload refused" in line and "cannot start: fail_start is set" in line,
              f"a feature whose start throws refuses the reload ({line.strip()})")
        r = await owner.command("echo")
        check(r["type"] == "error" and r.get("code") == "unknown_type", "its commands never became routable")

        # 4. A broken file, then a storage change: refused, nothing changes.
        write("[server\nlisten = ")
        await asyncio.sleep(0.3)  # chat goes on across each reload
        line = await asyncio.to_thread(host.reload, r"reload (applied|refused)")
        check("reload refused" in line and "switchboard.toml" in line, f"a broken file is refused, naming it ({line.strip()})")
        write(config(workdir, [("feature-typing", None), ("feature-receipts", None), ("feature-pins", {"max_pins": 2})],
                     storage_path=workdir + "/other.db"))
        await asyncio.sleep(0.3)  # chat goes on across each reload
        line = await asyncio.to_thread(host.reload, r"reload (applied|refused)")
        check("reload refused" in line and "[storage] changed" in line, f"a storage change is refused ({line.strip()})")
        r = await owner.command("pin.remove", message_id=pinned[0])
        check(r["type"] == "ack", "pins still work after the refused reloads")
        r = await owner.command("pin.add", message_id=third["id"])
        check(r["type"] == "ack", "and still with max_pins = 2 (one freed, one more fits)")
        r = await owner.command("reaction.add", message_id=first["id"], emoji="🎉")
        check(r["type"] == "error" and r.get("code") == "unknown_type", "reactions are still removed")

        await asyncio.sleep(1)
        stop.set()
        await chatting

        # Every acknowledged message reached every member of its group.
        members = {conversation: ms for conversation, ms in groups}
        deadline = time.time() + 30
        missing = None
        while time.time() < deadline:
            missing = [(c.user, mid) for conversation, mid in acked for c in members[conversation] if mid not in c.got]
            if not missing:
                break
            await asyncio.sleep(0.1)
        check(not missing, f"each of {len(acked)} acknowledged messages reached all {USERS // GROUPS} members "
                           f"({len(missing or [])} deliveries missing)")
        dropped = [f"{c.user}: {c.closed}" for c in clients if c.closed is not None]
        check(not dropped, f"no connection dropped ({dropped[:3]})")
        metrics = await asyncio.to_thread(host.metrics)
        check(re.search(r"^switchboard_reloads_total 3$", metrics, re.M) is not None, "reloads_total counts three")
        check(re.search(r"^switchboard_reload_failures_total 3$", metrics, re.M) is not None,
              "reload_failures_total counts three")
        for c in clients:
            await c.ws.close()
    finally:
        code = host.stop()
    check(code == 0, f"the host stops cleanly after the reloads (exit {code})")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all ok")
