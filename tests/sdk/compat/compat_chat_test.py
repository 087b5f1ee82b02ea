#!/usr/bin/python3
"""The current host on plugins built against SDK 1.0 (bus-gochannel and
storage-sqlite from the frozen headers): `switchboard plugins` says 1.0, and
chat works, including what SDK 1.1 added to Storage
(append_message_as_member), which the host does itself for a 1.0 storage.

usage: compat_chat_test.py SWITCHBOARD_BINARY COMPAT_PLUGIN_DIR
"""
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
from host_process import Host, hs256_token  # noqa: E402 (after the path it lives on)

SECRET = "compat-test-secret-0123456789"
failures = []


def check(condition, what):
    print(("ok: " if condition else "FAIL: ") + what, flush=True)
    if not condition:
        failures.append(what)


def token(user):
    return hs256_token(user, SECRET)


async def session(port, user):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token(user)}")
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello", hello
    return ws


async def command(ws, cid, type_, **fields):
    await ws.send(json.dumps({"id": cid, "type": type_, **fields}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame.get("id") == cid:
            return frame


async def until(ws, predicate):
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if predicate(frame):
            return frame


async def chat(port):
    alice, bob, carol = [await session(port, u) for u in ("alice", "bob", "carol")]
    r = await command(alice, "c1", "conversation.create", kind="group", name="compat", members=["bob"])
    conversation = r["result"]["conversation"]["id"]
    r = await command(alice, "s1", "message.send", conversation_id=conversation, text="from 1.0 storage")
    check(r["type"] == "ack" and r["result"]["message"]["text"] == "from 1.0 storage", "a member's message is stored")
    got = await until(bob, lambda f: f.get("type") == "message.new")
    check(got["message"]["text"] == "from 1.0 storage", "and delivered through the 1.0 bus")
    r = await command(carol, "s2", "message.send", conversation_id=conversation, text="outsider")
    check(r["type"] == "error" and r.get("code") == "forbidden", f"a non-member's message is refused ({r})")
    r = await command(carol, "s3", "message.send", conversation_id=conversation + 1000, text="nowhere")
    check(r["type"] == "error" and r.get("code") == "not_found", f"a message to no conversation is not_found ({r})")
    page = (await command(alice, "h1", "history", conversation_id=conversation))["result"]
    texts = [e["message"]["text"] for e in page["events"] if e["type"] == "message.new"]
    check(texts == ["from 1.0 storage"], f"history holds the one accepted message ({texts})")
    for ws in (alice, bob, carol):
        await ws.close()


def main(binary, plugin_dir):
    work = tempfile.mkdtemp(prefix="sb-compat-")
    config = os.path.join(work, "switchboard.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"
[auth]
algorithm = "HS256"
secret = "{SECRET}"
[plugins]
directories = ["{plugin_dir}"]
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "{work}/db"
""")
    listed = subprocess.run([binary, "plugins", "--config", config], capture_output=True, text=True)
    for name in ("bus-gochannel", "storage-sqlite"):
        check(re.search(rf"^\S+\s+{name}\s+\S+\s+1\.0\s", listed.stdout, re.M) is not None,
              f"switchboard plugins lists {name} as built against SDK 1.0")
    host = Host(binary, config)
    try:
        asyncio.run(chat(host.port))
    finally:
        code = host.stop()
    check(code == 0, f"the host stops cleanly (exit {code})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all ok")
