#!/usr/bin/env bash
# idle-rss.sh — ott-edge's idle RSS the way tests/bench/run.sh measures it, without any load:
# ott-edge with tests/bench/peers/ott-edge.yaml (2 threads, ACME off, a certificate from
# disk) in front of the benchmark's WebSocket echo upstream (tests/bench/ws/echo-server.mjs),
# one HTTPS request until it answers 200, 1 s of rest, then the sum of VmRSS
# (/proc/PID/status) over ott-edge's process tree.
#
#   tests/bench/idle-rss.sh [--runs N] [--smaps] [--wakeups S] [--bin BIN] [--config-extra FILE]
#   env: OTT_EDGE_BIN (default build/ott-edge); IDLE_RSS_HOOK: a command run with ott-edge's
#        PID at the last run's measurement (e.g. to copy /proc/PID/smaps)
#
#   --runs N     start ott-edge N times (default 3) and print each figure and the median
#   --smaps      after the last run's figure, print where the RSS is (from /proc/PID/smaps):
#                per library (all its mappings), heap, thread stacks / anonymous, and the rest
#   --wakeups S  also count, over S seconds of the same rest, how often ott-edge's threads
#                woke (context switches summed over /proc/PID/task/*/status) and print
#                "idle_wakeups_per_s <median>" (an idle sidecar should hardly wake)
#   --config-extra FILE  YAML lines appended to the config (e.g. an acme: section)
#
# Loopback only, ports 29500-29502; every wait is bounded; stops only what it started (by
# PID); its temp dir is removed at exit. Prints "idle_rss_kib <median>" last.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${OTT_EDGE_BIN:-$root/build/ott-edge}
runs=3 smaps=0 extra="" wake_s=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=${2:?--runs needs N}; shift ;;
    --smaps) smaps=1 ;;
    --wakeups) wake_s=${2:?--wakeups needs seconds}; shift ;;
    --bin) bin=${2:?--bin needs a path}; shift ;;
    --config-extra) extra=${2:?--config-extra needs a file}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "idle-rss.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case $runs in '' | *[!0-9]* | 0) echo "idle-rss.sh: --runs wants a positive number" >&2; exit 2 ;; esac
case $wake_s in '' | *[!0-9]*) echo "idle-rss.sh: --wakeups wants whole seconds" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "idle-rss.sh: no ott-edge binary at $bin (tools/build.sh)" >&2; exit 2; }

up_port=29500 https_port=29501 admin_port=29502
for p in $up_port $https_port $admin_port; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        echo "idle-rss.sh: port $p is in use" >&2
        exit 1
    fi
done

work=$(mktemp -d /tmp/oe-idle-rss.XXXXXX)
started=()
cleanup() {
    local p
    for p in "${started[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${started[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "idle-rss.sh: $*" >&2; exit 1; }

wait_200() {
    for _ in $(seq 200); do
        [ "$(curl -sk --max-time 1 -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}
descendants() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}
tree_rss_kib() { # sum of VmRSS (KiB) over the process tree rooted at $1
    local total=0 p v
    for p in "$1" $(descendants "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo $total
}
ctx_switches() { # voluntary + involuntary context switches summed over PID $1's threads
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n + 0}'
}
smaps_breakdown() { # where the RSS of PID $1 is, grouped, largest first (KiB)
    awk '
        /^[0-9a-f]+-[0-9a-f]+ / {
            path = (NF >= 6) ? $6 : ""
            if (path == "") name = "[anon: thread stacks, arenas, mmap]"
            else if (path ~ /^\[/) name = path
            else { n = split(path, a, "/"); name = a[n]; sub(/\.so[.0-9]*$/, ".so", name) }
            next
        }
        /^Rss:/ { rss[name] += $2; total += $2 }
        END {
            for (k in rss) if (rss[k] > 0) printf "%8d KiB  %s\n", rss[k], k
            printf "%8d KiB  total (smaps)\n", total
        }' /proc/"$1"/smaps | sort -rn
}

cd "$work" || die "no work dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout key.pem -out cert.pem 2>/dev/null ||
    die "openssl could not make the certificate"
mkdir -p state
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$https_port|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
    -e "s|@CERT@|$work/cert.pem|g" -e "s|@KEY@|$work/key.pem|g" -e "s|@ADMIN_PORT@|$admin_port|g" \
    "$here/peers/ott-edge.yaml" >config.yaml
[ -n "$extra" ] && cat "$extra" >>config.yaml
left=$(grep -v '^ *#' config.yaml | grep -o '@[A-Z_0-9]*@' | head -1)
[ -z "$left" ] || die "unfilled placeholder $left"

node "$here/ws/echo-server.mjs" --port $up_port >upstream.log 2>&1 &
started+=($!)
wait_200 "http://127.0.0.1:$up_port/" || { cat upstream.log >&2; die "the echo upstream did not start"; }

figures=() wakes=()
for r in $(seq "$runs"); do
    "$bin" --config config.yaml >edge.log 2>&1 &
    pid=$!
    started+=($pid)
    wait_200 "https://127.0.0.1:$https_port/" || { cat edge.log >&2; die "ott-edge did not answer 200"; }
    sleep 1
    kib=$(tree_rss_kib $pid)
    figures+=("$kib")
    printf 'run %d: idle RSS %d KiB (%.1f MiB), %d threads\n' "$r" "$kib" "$(awk -v k="$kib" 'BEGIN {print k / 1024}')" \
        "$(awk '/^Threads:/ {print $2}' /proc/$pid/status)"
    if [ "$wake_s" -gt 0 ]; then
        w0=$(ctx_switches $pid)
        sleep "$wake_s"
        w1=$(ctx_switches $pid)
        wakes+=("$(awk -v d=$((w1 - w0)) -v s="$wake_s" 'BEGIN {printf "%.1f", d / s}')")
        printf 'run %d: %s wake-ups/s over %d s idle\n' "$r" "${wakes[-1]}" "$wake_s"
    fi
    [ -n "${IDLE_RSS_HOOK:-}" ] && [ "$r" = "$runs" ] && "$IDLE_RSS_HOOK" $pid
    if [ "$smaps" = 1 ] && [ "$r" = "$runs" ]; then
        smaps_breakdown $pid
    fi
    kill $pid 2>/dev/null
    for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    unset 'started[${#started[@]}-1]'
done
median=$(printf '%s\n' "${figures[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
if [ "$wake_s" -gt 0 ]; then
    printf 'idle_wakeups_per_s %s (median of %d)\n' "$(printf '%s\n' "${wakes[@]}" | sort -g |
        awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')" "$runs"
fi
printf 'idle_rss_kib %d (%.1f MiB, median of %d)\n' "$median" "$(awk -v k="$median" 'BEGIN {print k / 1024}')" "$runs"
