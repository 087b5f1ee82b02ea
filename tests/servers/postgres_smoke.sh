#!/bin/sh
# Checks the fixture itself: PostgreSQL answers directly, PgBouncer answers in
# transaction pooling mode (where session state does not survive a transaction).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
direct=$("$bin/psql" "$DATABASE_URL" -tAc "SELECT 40 + 2")
[ "$direct" = 42 ] || { echo "direct query answered '$direct'" >&2; exit 1; }
pooled=$("$bin/psql" "$DATABASE_URL_POOLED" -tAc "SELECT current_database()")
[ "$pooled" = switchboard ] || { echo "pooled query answered '$pooled'" >&2; exit 1; }
admin="${DATABASE_URL_POOLED%/*}/pgbouncer"
mode=$("$bin/psql" "$admin" -tAc "SHOW CONFIG" | awk -F'|' '$1 == "pool_mode" {print $2}')
[ "$mode" = transaction ] || { echo "PgBouncer pool_mode is '$mode', not transaction" >&2; exit 1; }
echo "PASS: PostgreSQL direct, and through PgBouncer in transaction pooling mode"
