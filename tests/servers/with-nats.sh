#!/bin/sh
# Runs a command with a real nats-server on a free loopback port, exported
# as NATS_URL; stops the server afterwards, whatever happens.
#   with-nats.sh COMMAND [ARGS...]
set -eu
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Debian installs it in /usr/sbin, which not every PATH has.
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
"$nats_server" -a 127.0.0.1 -p "$port" >"$dir/nats.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
# Ready when it accepts connections; give up after 10 s.
for _ in $(seq 200); do
  if /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
    status=0
    NATS_URL="nats://127.0.0.1:$port" "$@" || status=$?
    exit "$status"
  fi
  sleep 0.05
done
echo "with-nats.sh: nats-server did not start:" >&2
cat "$dir/nats.log" >&2
exit 1
