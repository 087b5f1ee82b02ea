"""The real switchboard binary as a child process, for the Python end-to-end
tests: its log lines collected so a test can wait for one, SIGHUP reloads,
/metrics, a clean stop; and HS256 tokens made with a config's secret."""
import base64
import hashlib
import hmac
import json
import re
import signal
import subprocess
import threading
import time
import urllib.request


def hs256_token(user, secret, ttl=3600):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "exp": now + ttl}).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


class Host:
    """`switchboard serve --config CONFIG`, started and listening."""

    def __init__(self, binary, config):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_line(r"listening address=127\.0\.0\.1:(\d+)")
        self.port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_line(self, pattern, after=0, timeout=30):
        """The first log line from index `after` on matching `pattern`, within `timeout` s."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[after:]:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no log line /{pattern}/; log:\n" + "".join(self.lines[-20:]))
                self.cond.wait(left)

    def reload(self, pattern):
        """SIGHUP, and the log line matching `pattern` that follows it."""
        with self.cond:
            mark = len(self.lines)
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_line(pattern, after=mark)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return r.read().decode()

    def stop(self):
        """SIGTERM; the exit code (-1 if it had to be killed after 30 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1
