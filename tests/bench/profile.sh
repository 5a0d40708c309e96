#!/usr/bin/env bash
# Instructions per proxied request, and where they go: ott-edge under valgrind's callgrind
# (instruction counts do not depend on what else the machine is doing, unlike req/s), the
# same static nginx upstream as run.sh, a fixed number of requests from h2load.
#
#   tests/bench/profile.sh [--h2] [--body 1k|100k] [--requests N] [--bin BINARY] [--top N]
#   tests/bench/profile.sh --newconn [--seconds S] [--bin BINARY]
#
# --newconn: a new TLS connection per request (wrk -H 'Connection: close' for S seconds,
# default 20, the client pinned like run.sh's newconn axis: TLS 1.3, AES-128-GCM, X25519,
# sessions resumed), and the figure is instructions per connection.
#
# Prints "ott-edge: I instructions per request (N requests, K connections)" and the top
# functions by inclusive and self cost (callgrind_annotate). Compare two binaries by
# running it twice (--bin). PROFILE_KEEP=FILE keeps the callgrind output (for
# callgrind_annotate --tree=caller). PROFILE_CONFIG_EXTRA=FILE appends FILE to ott-edge's
# config (e.g. an access block: tests/bench/access-cost.sh --profile). Loopback only; stops
# only what it started.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/build/ott-edge proto=h1 body=1k requests=20000 top=30 seconds=20
while [ $# -gt 0 ]; do
    case $1 in
    --h2) proto=h2 ;;
    --newconn) proto=newconn ;;
    --seconds) seconds=${2:?}; shift ;;
    --body) body=${2:?}; shift ;;
    --requests) requests=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    --top) top=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "profile.sh: $*" >&2; exit 1; }

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
    prc=/usr/sbin/policy-rc.d ours=0
    if [ ! -e $prc ]; then # no packaged service may start on this machine's ports
        printf '#!/bin/sh\nexit 101\n' >$prc && chmod 755 $prc && ours=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null 2>&1
    rc=$?
    [ $ours = 1 ] && rm -f $prc
    [ $rc = 0 ] || die "apt-get install ${missing[*]} failed"
fi
[ -x "$bin" ] || die "no binary at $bin"

work=$(mktemp -d /tmp/ott-edge-profile.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "${PROFILE_KEEP:-}" ]; then
        cp "$work/cg.out" "$PROFILE_KEEP" 2>/dev/null && echo "callgrind output kept in $PROFILE_KEEP" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
base=${PROFILE_PORT_BASE:-27600}
up=$base edge=$((base + 1)) admin=$((base + 2))

render() { # render TEMPLATE OUT KEY=VALUE...
    local t=$1 o=$2 s
    shift 2
    s=$(cat "$t")
    for kv in "$@"; do s=${s//@${kv%%=*}@/${kv#*=}}; done
    printf '%s\n' "$s" >"$o"
}
mkdir -p "$work/up/tmp" "$work/up/www"
head -c 102400 /dev/zero | tr '\0' 'b' >"$work/up/www/100k"
chmod 755 "$work"
render "$here/peers/upstream-nginx.conf" "$work/up/nginx.conf" DIR="$work/up" UPSTREAM_WORKERS=1 UPSTREAM_PORT=$up \
    UPSTREAM_STATUS_PORT=$((base + 3)) BODY_1K="$(head -c 1024 /dev/zero | tr '\0' 'a')"
nginx -p "$work/up" -e "$work/up/error.log" -c "$work/up/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
render "$here/peers/ott-edge.yaml" "$work/edge.yaml" UPSTREAM_PORT=$up DIR="$work" PORT=$edge ADMIN_PORT=$admin \
    CERT="$work/cert.pem" KEY="$work/key.pem"
[ -n "${PROFILE_CONFIG_EXTRA:-}" ] && cat "$PROFILE_CONFIG_EXTRA" >>"$work/edge.yaml"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" --dump-instr=no "$bin" --config "$work/edge.yaml" \
    >"$work/edge.log" 2>&1 &
vg=$!
pids+=($vg)
for _ in $(seq 300); do
    curl -sk --max-time 1 -o /dev/null "https://127.0.0.1:$edge/" && break
    sleep 0.1
done
# start-up is not counted: instrumentation is switched on once ott-edge answers (zeroing the
# counters instead, callgrind_control -z, leaves the self costs unreadable)
callgrind_control -i on "$vg" >/dev/null 2>&1 || die "callgrind_control -i on failed"
sleep 0.5
path=/
[ "$body" = 100k ] && path=/100k
conns=16
if [ $proto = newconn ]; then
    OPENSSL_CONF=$here/client-openssl.cnf wrk -t2 -c$conns -d"${seconds}s" -H 'Connection: close' \
        "https://127.0.0.1:$edge$path" >"$work/load.log" 2>&1
    requests=$(awk '/requests in/ {print $1+0}' "$work/load.log")
    cat "$work/load.log" >&2
    [ "${requests:-0}" -gt 0 ] || die "wrk made no request (see above)"
elif [ $proto = h2 ]; then
    h2load -n "$requests" -c $conns -m 10 "https://127.0.0.1:$edge$path" >"$work/load.log" 2>&1
else
    h2load --h1 -n "$requests" -c $conns "https://127.0.0.1:$edge$path" >"$work/load.log" 2>&1
fi
grep -E "^requests:" "$work/load.log" >&2
kill -TERM $vg
wait $vg 2>/dev/null
total=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
[ -n "$total" ] || die "no callgrind totals (see $work/edge.log)"
if [ $proto = newconn ]; then
    echo "ott-edge: $((total / requests)) instructions per new TLS connection ($requests connections of one request, $body; shutdown included)"
else
    echo "ott-edge: $((total / requests)) instructions per request ($requests requests $proto $body, $conns connections; shutdown included)"
fi
echo "--- top $top by inclusive cost"
callgrind_annotate --inclusive=yes "$work/cg.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -$((top + 2))
echo "--- top $top by self cost"
callgrind_annotate "$work/cg.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -$((top + 2))
