#!/bin/sh
# Runs a command with a real PostgreSQL and a real PgBouncer in transaction
# pooling mode in front of it, each on a free loopback port, in a fresh data
# directory; stops both afterwards, whatever happens. Exports
#   DATABASE_URL         postgres://switchboard@127.0.0.1:<pg>/switchboard (direct)
#   DATABASE_URL_POOLED  the same through PgBouncer (transaction pooling)
#   SWITCHBOARD_PG_CTL   a script running pg_ctl on this server as its owner
#                        (`$SWITCHBOARD_PG_CTL stop|start|restart`), for fault tests
# PostgreSQL refuses to run as root: servers run as the `postgres` user.
#   with-postgres.sh COMMAND [ARGS...]
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
runuser=$(command -v runuser || echo /usr/sbin/runuser)  # /usr/sbin is not on every PATH
as_postgres() { if [ "$(id -u)" -eq 0 ]; then "$runuser" -u postgres -- "$@"; else "$@"; fi; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d)
chmod 755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
pg_port=$(free_port)
bouncer_port=$(free_port)
pg_started=
bouncer=
cleanup() {
  # runuser stays as pgbouncer's parent: stop pgbouncer itself, by its pidfile.
  if [ -f "$dir/pgbouncer.pid" ]; then
    pid=$(cat "$dir/pgbouncer.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ -n "$bouncer" ] && { kill "$bouncer" 2>/dev/null || true; wait "$bouncer" 2>/dev/null || true; }
  [ -n "$pg_started" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
pg_options="-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
cat >"$dir/pg_ctl.sh" <<SCRIPT
#!/bin/sh
# Callers must not pass it open descriptors (sockets would stay open in the
# server): tests start it through support/process, which closes them.
if [ "\$(id -u)" -eq 0 ]; then run="$runuser -u postgres --"; else run=; fi
exec \$run "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 -o "$pg_options" "\$@"
SCRIPT
chmod 755 "$dir/pg_ctl.sh"
"$dir/pg_ctl.sh" start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
pg_started=1
as_postgres "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE switchboard LOGIN" -c "CREATE DATABASE switchboard OWNER switchboard" >/dev/null

cat >"$dir/pgbouncer.ini" <<INI
[databases]
switchboard = host=127.0.0.1 port=$pg_port dbname=switchboard
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
stats_users = switchboard
max_client_conn = 1000
# Try the server again soon after it comes back (default 15 s).
server_login_retry = 1
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
echo '"switchboard" ""' >"$dir/userlist.txt"
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pgbouncer.ini" "$dir/userlist.txt"
as_postgres "$pgbouncer" "$dir/pgbouncer.ini" >"$dir/pgbouncer.out" 2>&1 &
bouncer=$!
for _ in $(seq 200); do
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$bouncer_port" -d switchboard -U switchboard; then
    status=0
    SWITCHBOARD_PG_CTL="$dir/pg_ctl.sh" \
    DATABASE_URL="postgres://switchboard@127.0.0.1:$pg_port/switchboard" \
    DATABASE_URL_POOLED="postgres://switchboard@127.0.0.1:$bouncer_port/switchboard" "$@" || status=$?
    exit "$status"
  fi
  sleep 0.05
done
echo "with-postgres.sh: pgbouncer did not start:" >&2
cat "$dir/pgbouncer.out" "$dir/pgbouncer.log" >&2 2>/dev/null || true
exit 1
