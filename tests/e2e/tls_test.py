#!/usr/bin/python3
"""[server.tls] through the real binary, with a self-signed certificate the
test makes (openssl, Debian's): wss:// and https:// on one listener, large
answers over TLS, plain HTTP refused with a clear error, the certificate
read again on SIGHUP without dropping a connection (and a broken one
refused, the old one kept), and the config errors `switchboard check`
reports. Also the static files and [auth] dev_tokens of the browser chat.

usage: tls_test.py SWITCHBOARD_BINARY
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from host_process import Host

SECRET = "tls-test-secret-0123456789"
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)


def make_cert(directory, name, cn):
    cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def der(pem_file):
    with open(pem_file) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def write_config(path, body):
    with open(path, "w") as f:
        f.write(body)
    return path


def tls_config(workdir, cert, key, listen="127.0.0.1:0", extra_auth=""):
    return f"""
[server]
listen = "{listen}"
static_dir = "{workdir}/www"
commands_per_second = 5000
command_burst = 5000
[server.tls]
cert = "{cert}"
key = "{key}"
[auth]
secret = "{SECRET}"
dev_tokens = true
{extra_auth}
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "{workdir}/switchboard.db"
"""


def https(port, context, path, body=None, method=None, headers=None):
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=body, headers=headers or {},
                                 method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as res:
            return res.status, res.read().decode(), res.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def peer_cert(port):
    """The DER certificate a new TLS connection is served (unverified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


async def answer(ws, cid, timeout=20):
    """The answer to command `cid`, skipping events."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("id") == cid and frame.get("type") in ("ack", "error"):
            return frame


async def chat_over_wss(port, context):
    status, body, _ = https(port, context, "/dev/token", json.dumps({"user_id": "alice"}).encode())
    check(status == 200 and "token" in body, f"POST /dev/token over https answers a token (got {status} {body})")
    alice = json.loads(body)["token"]
    bob = json.loads(https(port, context, "/dev/token", b'{"user_id":"bob"}')[1])["token"]
    url = f"wss://127.0.0.1:{port}/ws?token="
    # max_queue=None: both read all the time.
    async with websockets.connect(url + alice, ssl=context, max_size=None, max_queue=None) as a, \
            websockets.connect(url + bob, ssl=context, max_size=None, max_queue=None) as b:
        check(json.loads(await a.recv())["type"] == "hello", "wss: alice gets hello")
        check(json.loads(await b.recv())["type"] == "hello", "wss: bob gets hello")
        await a.send(json.dumps({"id": 1, "type": "conversation.create", "kind": "group", "name": "tls",
                                 "members": ["bob"]}))
        created = await answer(a, 1)
        cid = created["result"]["conversation"]["id"]
        # 80 messages of 7,000 bytes: pushes and then a ~600 KB history
        # answer leave through TLS records in partial writes.
        texts = [f"{i:03d}" + "x" * 6997 for i in range(80)]
        for i, text in enumerate(texts):
            await a.send(json.dumps({"id": f"s{i}", "type": "message.send", "conversation_id": cid, "text": text}))
        # Commands run concurrently, so the conversation's order is seq order,
        # not necessarily the order they were sent in.
        seen, seqs = [], []
        while len(seen) < len(texts):
            frame = json.loads(await asyncio.wait_for(b.recv(), 20))
            if frame.get("type") == "message.new":
                seen.append(frame["message"]["text"])
                seqs.append(frame["seq"])
        check(sorted(seen) == texts and seqs == sorted(seqs),
              "wss: bob receives alice's 80 large messages once each, in seq order")
        await b.send(json.dumps({"id": "h", "type": "history", "conversation_id": cid, "limit": 200}))
        page = await answer(b, "h")
        texts_in_page = [e["message"]["text"] for e in page["result"]["events"] if e["type"] == "message.new"]
        check(texts_in_page == seen, f"wss: history over TLS returns the 80 messages as delivered (got {len(texts_in_page)})")


async def reload_keeps_connections(host, workdir, context_first, context_second, cert_first, key_first):
    port = host.port
    tok = json.loads(https(port, context_first, "/dev/token", b'{"user_id":"carol"}')[1])["token"]
    async with websockets.connect(f"wss://127.0.0.1:{port}/ws?token={tok}", ssl=context_first) as old:
        await old.recv()  # hello
        # A new certificate in place of the old files, then SIGHUP.
        cert_second, key_second = make_cert(workdir, "second", "second")
        os.replace(cert_second, cert_first)
        os.replace(key_second, key_first)
        mark = len(host.lines)
        host.proc.send_signal(signal.SIGHUP)
        host.wait_line(r"reload applied.*certificate read again", after=mark)
        check(peer_cert(port) == der(cert_first), "after SIGHUP a new connection is served the new certificate")
        await old.send(json.dumps({"id": "p1", "type": "ping"}))
        check((await answer(old, "p1"))["type"] == "ack", "a connection opened before SIGHUP keeps working")
        status, _, _ = https(port, context_second, "/health")
        check(status == 200, "https with the new certificate answers")

        # A broken certificate: refused, the second one still served.
        second_der = der(cert_first)
        with open(cert_first, "w") as f:
            f.write("not a certificate\n")
        mark = len(host.lines)
        host.proc.send_signal(signal.SIGHUP)
        line = host.wait_line(r"reload refused", after=mark)
        check("server.tls" in line and cert_first in line, f"a refused reload names the file ({line.strip()})")
        check(peer_cert(port) == second_der, "after a refused reload the previous certificate is still served")
        await old.send(json.dumps({"id": "p2", "type": "ping"}))
        check((await answer(old, "p2"))["type"] == "ack", "a refused reload drops no connection")
    status, metrics, _ = https(port, context_second, "/metrics")
    check(re.search(r"^switchboard_reloads_total 1$", metrics, re.M) is not None, "reloads_total counts one reload")
    check(re.search(r"^switchboard_reload_failures_total 1$", metrics, re.M) is not None,
          "reload_failures_total counts one refusal")


def ws_frames(data):
    """Server frames (opcode, payload) parsed from raw bytes, and what is left."""
    out, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        length, j = b1 & 127, i + 2
        if length == 126:
            if j + 2 > len(data):
                break
            length, j = struct.unpack(">H", data[j:j + 2])[0], j + 2
        elif length == 127:
            if j + 8 > len(data):
                break
            length, j = struct.unpack(">Q", data[j:j + 8])[0], j + 8
        if j + length > len(data):
            break
        out.append((b0 & 15, data[j:j + length]))
        i = j + length
    return out, data[i:]


async def slow_consumer_over_tls(port, context):
    """A wss client that stops reading is closed with 1008 like a plain one:
    the frames it does get are whole, then the close frame says why. (TLS
    retry rules: a record OpenSSL holds must be written as it was, even when
    the session drops the frames it came from.)"""
    def token(user):
        return json.loads(https(port, context, "/dev/token", json.dumps({"user_id": user}).encode())[1])["token"]
    slow, fast = token("slow"), token("fast")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    s = context.wrap_socket(raw, server_hostname="127.0.0.1")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /ws?token={slow} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    check(b" 101 " in head.split(b"\r\n")[0], "the slow client upgrades over TLS")
    # Over the queue bound (1 MiB) plus what the host's socket buffer takes
    # (up to 4 MiB): 2,500 messages of 3 KB.
    count = 2500
    # max_queue=None: this client reads all the time, into its own queue.
    async with websockets.connect(f"wss://127.0.0.1:{port}/ws?token={fast}", ssl=context, max_size=None,
                                  max_queue=None) as f:
        await f.recv()
        await f.send(json.dumps({"id": 1, "type": "conversation.create", "kind": "group", "name": "slow",
                                 "members": ["slow"]}))
        cid = (await answer(f, 1))["result"]["conversation"]["id"]
        for i in range(count):
            await f.send(json.dumps({"id": f"m{i}", "type": "message.send", "conversation_id": cid,
                                     "text": f"{i:05d}" + "x" * 3000}))
        acks = 0
        while acks < count:
            frame = json.loads(await asyncio.wait_for(f.recv(), 60))
            if str(frame.get("id", "")).startswith("m"):
                acks += 1
    # Now read what the host sent the slow client, to the end.
    s.settimeout(20)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (ssl.SSLError, OSError, socket.timeout):
        pass
    s.close()
    frames, rest = ws_frames(head.split(b"\r\n\r\n", 1)[1] + data)
    texts = [p for op, p in frames if op == 1]
    whole = all(json.loads(p).get("type") for p in texts)
    closes = [struct.unpack(">H", p[:2])[0] for op, p in frames if op == 8]
    check(whole and not rest, f"over TLS the slow client gets whole frames only ({len(texts)} texts, {len(rest)} stray bytes)")
    check(closes == [1008], f"over TLS the slow client is closed with 1008 (close frames: {closes})")


async def bad_tokens_leave_others_alone(port, context):
    """A token naming another algorithm makes libjwt leave OpenSSL errors on
    the worker's thread; the next TLS call there must not read them as its
    own and abort an innocent connection."""
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"sub":"mallory","exp":4102444800}').rstrip(b"=").decode()
    forged = f"{header}.{claims}." + base64.urlsafe_b64encode(os.urandom(256)).rstrip(b"=").decode()
    end = time.time() + 3
    stats = {"ok": 0, "failed": 0, "refused": 0}

    async def innocent():
        while time.time() < end:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
                for _ in range(3):  # keep-alive: the host reads again between requests
                    w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    await asyncio.wait_for(r.readuntil(b'{"status":"ok"}'), 10)
                stats["ok"] += 1
                w.close()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError):
                stats["failed"] += 1

    async def attacker():
        while time.time() < end:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
            w.write(f"GET /conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {forged}\r\n\r\n".encode())
            if b" 401 " in await r.read():
                stats["refused"] += 1
            w.close()

    await asyncio.gather(*[attacker() for _ in range(3)], *[innocent() for _ in range(8)])
    check(stats["refused"] > 0 and stats["ok"] > 0 and stats["failed"] == 0,
          f"forged tokens are refused and abort no other TLS connection ({stats})")


def plain_on_tls_port(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer_bytes = b""
        while chunk := s.recv(4096):
            answer_bytes += chunk
    text = answer_bytes.decode(errors="replace")
    check(text.startswith("HTTP/1.1 400"), f"plain HTTP on the TLS port is answered 400 (got {text[:40]!r})")
    check("use https:// or wss://" in text, "the 400 says to use https:// or wss://")


async def plain_ws_on_tls_port(port):
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token=x", open_timeout=10):
            check(False, "a plain ws:// upgrade on the TLS port is refused")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 400, f"a plain ws:// upgrade on the TLS port gets 400 (got {e.status_code})")


def check_refusals(binary, workdir, cert, key):
    def run_check(body):
        config = write_config(os.path.join(workdir, "check.toml"), body)
        p = subprocess.run([binary, "check", "--config", config], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    code, out = run_check(tls_config(workdir, cert, key))
    check(code == 0, f"check accepts the TLS config ({out.strip()})")
    code, out = run_check(tls_config(workdir, os.path.join(workdir, "missing.pem"), key))
    check(code == 1 and "server.tls" in out and "missing.pem" in out,
          f"check names a missing certificate file ({out.strip()})")
    other_cert, other_key = make_cert(workdir, "other", "other")
    code, out = run_check(tls_config(workdir, cert, other_key))
    check(code == 1 and "does not match" in out, f"check refuses a key that does not match ({out.strip()})")
    code, out = run_check(tls_config(workdir, cert, key, listen="0.0.0.0:0"))
    check(code == 1 and "auth.dev_tokens" in out and "loopback" in out,
          f"dev_tokens is refused on a listener that is not loopback ({out.strip()})")
    code, out = run_check(tls_config(workdir, cert, key).replace("[server.tls]", "[server.tls]\ncertificate = 1"))
    check(code == 1 and "server.tls.certificate: unknown key" in out, f"an unknown TLS key is named ({out.strip()})")
    code, out = run_check(tls_config(workdir, cert, key).replace(f'static_dir = "{workdir}/www"',
                                                                 f'static_dir = "{workdir}/nowhere"'))
    check(code == 1 and "server.static_dir" in out and "not a directory" in out,
          f"a missing static_dir is named ({out.strip()})")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="switchboard-tls-") as workdir:
        os.makedirs(os.path.join(workdir, "www", "js"))
        with open(os.path.join(workdir, "www", "index.html"), "w") as f:
            f.write("<!doctype html><title>chat</title>")
        with open(os.path.join(workdir, "www", "js", "app.js"), "w") as f:
            f.write("export const ok = 1;\n")
        with open(os.path.join(workdir, "www", ".env"), "w") as f:
            f.write("SECRET=1\n")
        cert, key = make_cert(workdir, "first", "first")
        first_context = ssl.create_default_context(cafile=cert)
        host = Host(binary, write_config(os.path.join(workdir, "switchboard.toml"), tls_config(workdir, cert, key)))
        try:
            host.wait_line(rf"open https://127\.0\.0\.1:{host.port}/ in a browser")
            status, body, headers = https(host.port, first_context, "/")
            check(status == 200 and "<title>chat</title>" in body and headers["Content-Type"].startswith("text/html"),
                  f"GET / over https serves index.html ({status})")
            status, body, headers = https(host.port, first_context, "/js/app.js")
            check(status == 200 and headers["Content-Type"].startswith("text/javascript"),
                  f"GET /js/app.js serves the file as JavaScript ({status})")
            status, _, _ = https(host.port, first_context, "/js/../../switchboard.toml")
            check(status in (401, 404), f"a path out of static_dir serves nothing ({status})")
            status, _, _ = https(host.port, first_context, "/conversations")
            check(status == 401, f"API routes still need a token ({status})")
            asyncio.run(chat_over_wss(host.port, first_context))
            asyncio.run(slow_consumer_over_tls(host.port, first_context))
            asyncio.run(bad_tokens_leave_others_alone(host.port, first_context))
            status, _, headers = https(host.port, first_context, "/", method="HEAD")
            check(status == 200 and headers["Content-Length"] == str(len("<!doctype html><title>chat</title>")),
                  f"HEAD / answers the length of index.html ({status})")
            status, _, _ = https(host.port, first_context, "/.env")
            check(status in (401, 404), f"a dot-file is not served ({status})")
            status, body, _ = https(host.port, first_context, "/dev/token", b'{"user_id":"bob\\u0000admin"}')
            check(status == 400 and "control" in body, f"a user id with a control character is refused ({status} {body})")
            status, body, _ = https(host.port, first_context, "/dev/token", b'{"user_id":"eve"}',
                                    headers={"Host": "attacker.example"})
            check(status == 403, f"POST /dev/token from another Host is refused ({status} {body})")
            status, body, _ = https(host.port, first_context, "/dev/token", b'{"user_id":"eve"}',
                                    headers={"X-Forwarded-For": "203.0.113.7"})
            check(status == 403, f"POST /dev/token through a proxy is refused ({status} {body})")
            status, body, _ = https(host.port, first_context, "/dev/token", b'{"user_id":"eve"}',
                                    headers={"Origin": "https://attacker.example"})
            check(status == 403, f"POST /dev/token from a page of another origin is refused ({status} {body})")
            plain_on_tls_port(host.port)
            asyncio.run(plain_ws_on_tls_port(host.port))
            second_context = ssl.create_default_context()
            second_context.check_hostname = False
            second_context.verify_mode = ssl.CERT_NONE
            asyncio.run(reload_keeps_connections(host, workdir, first_context, second_context, cert, key))
            check(host.proc.poll() is None, "the host still runs")
        finally:
            code = host.stop()
        check(code == 0, f"the host stops cleanly on SIGTERM (exit {code})")
        # check_refusals overwrites nothing the host used: fresh certificates.
        cert, key = make_cert(workdir, "third", "third")
        check_refusals(binary, workdir, cert, key)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("tls: every check passed")


if __name__ == "__main__":
    main()
