#!/usr/bin/env bash
# Memory of ott-edge under clients that never read: N HTTP/2 connections (default 100),
# each opening 32 streams for a 4 MiB response with a zero flow-control window, held for a
# few seconds once every stream has its response head. Prints ott-edge's RSS before, at its
# peak and after, the growth per connection against the budget (32 streams x 32 KiB =
# 1 MiB), and what a normal client saw meanwhile. Attacker: tests/lib/h2attack.py no-read
# (Debian's python3-h2); upstream: the OTT-like test upstream. Loopback only; stops what it
# started.
#
#   tests/bench/noread-memory.sh [--connections N] [--bin BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/build/ott-edge conns=100
while [ $# -gt 0 ]; do
    case $1 in
    --connections) conns=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "noread-memory.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "noread-memory.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin"
/usr/bin/python3 -c 'import h2, hpack' 2>/dev/null || die "needs Debian's python3-h2 (tools/deps.sh test)"

work=$(mktemp -d /tmp/ott-edge-noread.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
base=${NOREAD_PORT_BASE:-27700}
up=$base edge=$((base + 1)) admin=$((base + 2))
ulimit -n 65536 2>/dev/null
node "$root/tests/upstream/ott-upstream.mjs" --port $up --host 127.0.0.1 >"$work/up.log" 2>&1 &
pids+=($!)
cat >"$work/edge.yaml" <<EOF
threads: 2
upstream: http://127.0.0.1:$up
state_dir: $work/state
listen: {https: "127.0.0.1:$edge", http: "", admin: "127.0.0.1:$admin"}
acme: {enabled: false}
shutdown: {delay: 0s, grace: 1s}
EOF
"$bin" --config "$work/edge.yaml" >"$work/edge.log" 2>&1 &
epid=$!
pids+=($epid)
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ] && break
    sleep 0.1
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$epid/status"; }
before=$(rss) peak=$before
(
    while kill -0 $epid 2>/dev/null; do
        r=$(rss) && echo "$r"
        sleep 0.1
    done
) >"$work/rss.log" &
sampler=$!
normal_ok=0 normal_fail=0 normal_max=0
(
    while :; do
        t0=$(date +%s%N)
        code=$(curl -sk --http2 -o /dev/null -w '%{http_code}' --max-time 20 "https://127.0.0.1:$edge/api/status")
        echo "$code $(( ($(date +%s%N) - t0) / 1000000 ))"
        sleep 0.2
    done
) >"$work/normal.log" &
normal=$!
t0=$(date +%s)
result=$(/usr/bin/python3 "$root/tests/lib/h2attack.py" no-read --connections "$conns" --count 32 --seconds 120 --hold 5 \
    --path '/big?kb=4096' --port "$edge" --source 127.0.0.90 | tail -1)
kill $normal $sampler 2>/dev/null
wait $normal $sampler 2>/dev/null
after=$(rss)
peak=$(sort -n "$work/rss.log" | tail -1)
read -r normal_ok normal_fail normal_max < <(awk '$1 == 200 {ok++} $1 != 200 {bad++} $2 > max {max = $2} END {print ok + 0, bad + 0, max + 0}' "$work/normal.log")
growth=$(( peak - before ))
echo "attack: $result"
echo "ott-edge RSS: before $((before / 1024)) MiB, peak $((peak / 1024)) MiB, after $((after / 1024)) MiB"
echo "growth: $((growth / 1024)) MiB for $conns connections x 32 streams x 4 MiB = $((growth / conns)) KiB per connection (budget 1024 KiB)"
echo "normal client meanwhile: $normal_ok ok, $normal_fail failed, slowest ${normal_max} ms; $(( $(date +%s) - t0 )) s in all"
