#!/bin/sh
# Stand-in for the official postgres image's entrypoint (test image only): on first start
# creates the cluster in $PGDATA with POSTGRES_USER (superuser, POSTGRES_PASSWORD) and the
# database POSTGRES_DB, password authentication from the network; then runs postgres as
# the postgres user, as PID 1.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
install -d -o postgres -g postgres -m 0700 "$PGDATA"
install -d -o postgres -g postgres -m 2775 /run/postgresql
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$pw"
    chown postgres "$pw"
    # --no-sync: a test stand-in, its data need not survive a power cut
    as_pg initdb --no-sync -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | as_pg postgres --single -D "$PGDATA" postgres >/dev/null
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
