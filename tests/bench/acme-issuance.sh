#!/usr/bin/env bash
# acme-issuance — time from ott-edge process start to the first valid ACME certificate
# served, for two names, against a local pebble with real validation (not a ctest test).
#
#   tests/bench/acme-issuance.sh [RUNS] [CHALLENGE] [SITES]   (defaults: 10 http-01 0)
#   env OTT_EDGE_BIN=path/to/ott-edge (default build/ott-edge)
#
# Each run: fresh state_dir (so a new account key and account are included), start
# ott-edge, then poll with curl (trusting only pebble's root, SNI a.ott-edge.test) until the
# TLS handshake verifies. Prints per-run milliseconds and min/median/max; also the time
# ott-edge itself logs for the order (acme_certificate_installed duration_ms).
# SITES > 0: a `sites` configuration instead, SITES sites of two names each
# (a.sN.ott-edge.test, b.sN.ott-edge.test), one certificate (one order, one job) per site,
# all sharing one new account; a run ends when every site's name verifies with its own
# certificate.
# Peers' figure on this setup (uacme, HTTP-01, two names, new account excluded): 0.3–0.65 s.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${OTT_EDGE_BIN:-$here/build/ott-edge}
runs=${1:-10}
challenge=${2:-http-01}
sites=${3:-0}
acme_port=14470 mgmt_port=15047 dns_port=14473 cts_port=14475 http_port=5690 tls_port=5691 admin_port=5689
[ -x "$bin" ] || { echo "no ott-edge binary at $bin (build it or set OTT_EDGE_BIN)" >&2; exit 1; }
bin=$(realpath "$bin") # the runs happen in a temporary directory
work=$(mktemp -d /tmp/ott-edge-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=pebble test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout localhost.key \
    -out localhost.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in localhost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf \
    -out localhost.pem 2>/dev/null
cat > pebble.json <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$mgmt_port",
  "certificate": "$work/localhost.pem", "privateKey": "$work/localhost.key",
  "httpPort": $http_port, "tlsPort": $tls_port, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": 3600}}
JSON
pebble-challtestsrv -dns01 127.0.0.1:$dns_port -http01 "" -https01 "" -tlsalpn01 "" \
    -management 127.0.0.1:$cts_port -defaultIPv6 "" >cts.log 2>&1 &
pids+=($!)
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config pebble.json -dnsserver 127.0.0.1:$dns_port >pebble.log 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -fsS --cacert ca.pem "https://127.0.0.1:$acme_port/dir" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fsS --cacert ca.pem "https://127.0.0.1:$mgmt_port/roots/0" > root.pem

now_ms() { date +%s%3N; }
results=()
hosts=(a.ott-edge.test)
if [ "$sites" -gt 0 ]; then
    hosts=()
    {
        echo "sites:"
        for s in $(seq "$sites"); do
            echo "  - {name: s$s, domains: [a.s$s.ott-edge.test, b.s$s.ott-edge.test], upstream: \"http://127.0.0.1:9\"}"
            hosts+=("a.s$s.ott-edge.test")
        done
    } > sites.yaml
    what="$sites sites of two names each"
else
    echo "domains: [a.ott-edge.test, b.ott-edge.test]" > sites.yaml
    echo "upstream: http://127.0.0.1:9" >> sites.yaml
    what="two names"
fi
# 0 when host's handshake on the HTTPS port verifies against pebble's root
verified() {
    curl -s -o /dev/null --max-time 1 --cacert root.pem --resolve "$1:$tls_port:127.0.0.1" "https://$1:$tls_port/" 2>/dev/null
}
echo "ott-edge: $bin; pebble on 127.0.0.1:$acme_port; challenge $challenge; $what; $runs runs"
for i in $(seq "$runs"); do
    rm -rf state && cat sites.yaml - > edge.yaml <<YAML
state_dir: $work/state
listen: {https: "127.0.0.1:$tls_port", http: "127.0.0.1:$http_port", admin: "127.0.0.1:$admin_port"}
shutdown: {delay: 0s, grace: 1s}
acme: {directory: "https://127.0.0.1:$acme_port/dir", ca_file: "$work/ca.pem", challenges: [$challenge]}
YAML
    t0=$(now_ms)
    "$bin" --config edge.yaml 2>edge.log &
    edge=$!
    ok=0 next=0
    for _ in $(seq 3000); do # bounded: ~30 s at worst
        while [ "$next" -lt "${#hosts[@]}" ] && verified "${hosts[$next]}"; do next=$((next + 1)); done
        if [ "$next" -ge "${#hosts[@]}" ]; then ok=1; break; fi
        sleep 0.01
    done
    t1=$(now_ms)
    [ -n "${BENCH_VERBOSE:-}" ] && grep -E "starting|acme_|certificate_loaded" edge.log >&2; kill -TERM "$edge" 2>/dev/null || true
    wait "$edge" 2>/dev/null || true
    [ "$ok" = 1 ] || { echo "run $i: no valid certificate served; log:" >&2; cat edge.log >&2; exit 1; }
    order_ms=$(sed -n 's/.*acme_certificate_installed.*duration_ms=\([0-9]*\).*/\1/p' edge.log | paste -sd/ -)
    printf 'run %2d: %4d ms from process start to a verified handshake (order itself: %s ms)\n' "$i" $((t1 - t0)) "$order_ms"
    results+=($((t1 - t0)))
    sleep 0.2
done
sorted=($(printf '%s\n' "${results[@]}" | sort -n))
n=${#sorted[@]}
echo "min ${sorted[0]} ms, median ${sorted[$((n / 2))]} ms, max ${sorted[$((n - 1))]} ms (peers: uacme 300-650 ms)"
