#!/bin/sh
# Stand-in for OTT's docker/scripts/wait_for_db.sh (test image only): waits up to 15 s for
# PostgreSQL at $POSTGRES_HOST:$POSTGRES_PORT (default localhost:5432) to accept a TCP
# connection, then runs the command after "--" (OTT's migrations are not part of the stand-in).
host=${POSTGRES_HOST:-localhost}
port=${POSTGRES_PORT:-5432}
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
[ "${1:-}" = "--" ] && shift
i=0
until node -e 'const s=require("net").connect(+process.argv[2],process.argv[1]);s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$host" "$port"; do
    i=$((i + 1))
    if [ "$i" -ge 15 ]; then echo "wait_for_db.sh: $host:$port did not answer in 15 s" >&2; exit 1; fi
    sleep 1
done
exec "$@"
