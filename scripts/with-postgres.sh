#!/usr/bin/env bash
# with-postgres.sh CMD... — runs CMD against a throwaway PostgreSQL 15 cluster.
#
# initdb into a fresh temporary directory (owned by the `postgres` system user: PostgreSQL refuses to run
# as root), start it listening only on 127.0.0.1 at a free port with its socket in that directory and
# trust authentication (the cluster lives only for this command), export
#   MEMFUSE_TEST_PG_DSN        a DSN for the cluster (database "postgres", superuser "postgres")
#   MEMFUSE_TEST_PG_ADMIN_DSN  the same superuser DSN (tests create one database per server with it)
#   MEMFUSE_TEST_PG_DATA       the cluster's data directory
#   MEMFUSE_TEST_PG_CTL        a command prefix that runs pg_ctl as the cluster owner: stop/start the
#                              server with  $MEMFUSE_TEST_PG_CTL stop|start  (used by the outage tests)
# then run CMD, and always stop and remove the cluster. Exits with CMD's exit code.
set -u
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ $# -ge 1 ] || { echo "usage: $0 CMD..." >&2; exit 2; }
[ -x "$PGBIN/initdb" ] || { echo "with-postgres: $PGBIN/initdb not found (install postgresql-15)" >&2; exit 2; }

AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "with-postgres: running as root needs the 'postgres' user" >&2; exit 2; }
  AS=(runuser -u postgres --)
fi

TMP=$(mktemp -d /tmp/memfuse-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$TMP"
chmod 700 "$TMP"
DATA="$TMP/data"
LOG="$TMP/server.log"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "${AS[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$TMP/initdb.log" 2>&1; then
  cat "$TMP/initdb.log" >&2; exit 2
fi
# fsync stays on (durability is what the tests check); small shared memory; enough connections for
# one pool per server the suite starts
cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$TMP'
max_connections = 300
shared_buffers = 32MB
log_min_messages = warning
EOF
PGCTL=("${AS[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 120) # crash recovery on a loaded 2-core machine can take more than 30 s
if ! "${PGCTL[@]}" start >/dev/null; then
  echo "with-postgres: the server did not start:" >&2; cat "$LOG" >&2; exit 2
fi

export MEMFUSE_TEST_PG_DSN="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
export MEMFUSE_TEST_PG_ADMIN_DSN="$MEMFUSE_TEST_PG_DSN"
export MEMFUSE_TEST_PG_DATA="$DATA"
export MEMFUSE_TEST_PG_CTL="${PGCTL[*]}"
"$@"
rc=$?
exit $rc
