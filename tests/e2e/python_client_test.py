#!/usr/bin/python3
"""An independent Switchboard client, written from docs/protocol.md only,
on Debian's python3-websockets. Starts the real host, then: two users
create a conversation, exchange messages, one drops, misses messages and a
reaction, and resumes with its last position.

usage: python_client_test.py SWITCHBOARD_BINARY PLUGIN_DIR
"""
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import websockets

SECRET = "python-client-secret-0123456789"


def start_host(binary, workdir):
    config = os.path.join(workdir, "switchboard.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"
[auth]
algorithm = "HS256"
secret = "{SECRET}"
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "{workdir}/switchboard.db"
[[features]]
plugin = "feature-reactions"
""")
    host = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    for line in host.stdout:
        match = re.search(r"listening address=127\.0\.0\.1:(\d+)", line)
        if match:
            return host, config, int(match.group(1))
        if time.time() > deadline:
            break
    host.kill()
    raise RuntimeError("host did not start")


def token(binary, config, user):
    return subprocess.check_output([binary, "token", "--config", config, "--user", user], text=True).strip()


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.pending = []  # frames received while waiting for something else

    @classmethod
    async def connect(cls, port, tok):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={tok}")
        client = cls(ws)
        hello = await client.expect("hello")
        return client, hello

    async def frame(self, timeout=10):
        if self.pending:
            return self.pending.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def expect(self, type_, timeout=10):
        while True:
            f = await self.frame(timeout)
            if f["type"] == type_:
                return f

    async def command(self, type_, **fields):
        cid = f"py-{self.next_id}"
        self.next_id += 1
        await self.ws.send(json.dumps({"id": cid, "type": type_, **fields}))
        while True:
            f = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if f["type"] in ("ack", "error") and f.get("id") == cid:
                if f["type"] == "error":
                    raise AssertionError(f"{type_} failed: {f['code']}: {f['message']}")
                return f["result"]
            self.pending.append(f)


async def scenario(binary, port, config):
    alice, hello = await Client.connect(port, token(binary, config, "alice"))
    assert hello["user_id"] == "alice", hello
    bob, _ = await Client.connect(port, token(binary, config, "bob"))

    created = await alice.command("conversation.create", kind="group", name="py", members=["bob"])
    conv = created["conversation"]
    cid, epoch = conv["id"], conv["epoch"]

    sent = await alice.command("message.send", conversation_id=cid, text="hello from python", client_key="py-1")
    event = await bob.expect("message.new")
    assert event["message"]["text"] == "hello from python", event
    assert event["seq"] == sent["seq"]
    again = await alice.command("message.send", conversation_id=cid, text="hello from python", client_key="py-1")
    assert again["duplicate"] is True and again["message"]["id"] == sent["message"]["id"]

    await bob.command("message.send", conversation_id=cid, text="hi alice")
    reply = await alice.expect("message.new")
    while reply["message"]["author"] != "bob":
        reply = await alice.expect("message.new")
    position = reply["seq"]
    await bob.ws.close()

    for i in range(3):
        await alice.command("message.send", conversation_id=cid, text=f"missed {i}")
    await alice.command("reaction.add", message_id=sent["message"]["id"], emoji="🐍")

    bob, _ = await Client.connect(port, token(binary, config, "bob"))
    await bob.command("subscribe", positions=[{"conversation_id": cid, "epoch": epoch, "seq": position}])
    replayed = []
    while True:
        f = await bob.frame()
        if f["type"] == "resume":
            assert f["recovered"] is True, f
            break
        replayed.append(f)
    assert [f["type"] for f in replayed] == ["message.new"] * 3 + ["reaction.add"], replayed
    assert [f["seq"] for f in replayed] == list(range(position + 1, position + 5)), replayed

    history = await bob.command("history", conversation_id=cid, limit=50)
    first = next(e for e in history["events"] if e["type"] == "message.new")
    assert first["message"]["reactions"] == {"🐍": ["alice"]}, first

    await bob.ws.send("{broken json")
    err = await bob.expect("error")
    assert err["code"] == "bad_request", err
    await alice.ws.close()
    await bob.ws.close()


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as workdir:
        host, config, port = start_host(binary, workdir)
        try:
            asyncio.run(asyncio.wait_for(scenario(binary, port, config), 60))
        finally:
            host.terminate()
            host.wait(timeout=30)
    print("PASS: the python3-websockets client completed the scenario")


if __name__ == "__main__":
    main()
