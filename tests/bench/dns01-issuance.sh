#!/usr/bin/env bash
# dns01-issuance — time from ott-edge process start to the first valid wildcard certificate
# served (ott.test + *.ott.test through DNS-01), against a local pebble that really
# validates through a local resolver (unbound) in front of a local authoritative server
# (knotd) taking RFC 2136 updates with TSIG; and how much of it is the propagation wait.
# A benchmark, not a ctest test.
#
#   tests/bench/dns01-issuance.sh [RUNS] [PROVIDER] [secondary]   (defaults: 10 rfc2136; or exec)
#   env OTT_EDGE_BIN=path/to/ott-edge (default build/ott-edge)
# With "secondary", a second knotd serves ott.test as a secondary (NOTIFY + zone transfer from
# the primary), ott-edge waits until both answer (acme.dns.resolvers: [primary, secondary])
# and pebble reads from the secondary: the propagation wait is then the primary -> secondary
# hop a real zone has, instead of ~0 when only the primary that took the update is asked.
#
# Each run: fresh state_dir (a new account key and account are included), start ott-edge,
# poll with curl (trusting only pebble's root, SNI www.ott.test, a name only the wildcard
# covers) until the TLS handshake verifies. Prints per run: ms to a verified handshake, the
# order as ott-edge logs it (acme_certificate_installed duration_ms), the propagation wait
# (acme_dns_propagated waited_ms) and the time spent writing the two records
# (acme_dns_present duration_ms). ott-edge checks propagation at acme.dns.resolvers (knotd
# itself) here; against real DNS the wait is how long the zone's secondaries take.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${OTT_EDGE_BIN:-$here/build/ott-edge}
runs=${1:-10}
provider=${2:-rfc2136}
secondary=${3:-}
acme_port=14460 mgmt_port=15046 knot_port=14463 unbound_port=14464 sec_port=14465 http_port=5692 tls_port=5693 admin_port=5687
bin=$(readlink -f "$bin" 2>/dev/null || echo "$bin")
[ -x "$bin" ] || { echo "no ott-edge binary at $bin (build it or set OTT_EDGE_BIN)" >&2; exit 1; }
for c in knotd knsupdate kdig unbound pebble; do
    command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin command -v "$c" >/dev/null ||
        { echo "$c is missing (tools/deps.sh test)" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin
work=$(mktemp -d /tmp/ott-edge-bench-dns01-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

# ---- knotd: authoritative for ott.test, updates with a TSIG key
secret=$(head -c 32 /dev/urandom | base64)
cat > knot.conf <<EOF
server:
    rundir: "$work"
    listen: 127.0.0.1@$knot_port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work"
control:
    listen: "$work/knot.sock"
log:
  - target: stderr
    any: warning
key:
  - id: bench-key.
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: update
    key: bench-key.
    action: update
  - id: transfer
    address: 127.0.0.1
    action: transfer
remote:
  - id: secondary
    address: 127.0.0.1@$sec_port
template:
  - id: default
    storage: "$work"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
zone:
  - domain: ott.test
    acl: [update, transfer]
$( [ -n "$secondary" ] && echo "    notify: secondary" )
EOF
printf '$ORIGIN ott.test.\n$TTL 60\n@ SOA ns1.ott.test. hostmaster.ott.test. 1 3600 600 86400 1\n@ NS ns1.ott.test.\nns1 A 127.0.0.1\n' > ott.test.zone
knotd -c knot.conf >knot.log 2>&1 &
pids+=($!)
check_port=$knot_port
if [ -n "$secondary" ]; then
    mkdir -p sec
    cat > sec/knot.conf <<EOF
server:
    rundir: "$work/sec"
    listen: 127.0.0.1@$sec_port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/sec"
log:
  - target: stderr
    any: warning
remote:
  - id: primary
    address: 127.0.0.1@$knot_port
acl:
  - id: notify
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "$work/sec"
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
zone:
  - domain: ott.test
    master: primary
    acl: notify
EOF
    knotd -c sec/knot.conf >sec/knot.log 2>&1 &
    pids+=($!)
    check_port=$sec_port
fi
# ---- unbound: the CA's recursive resolver, only for ott.test
cat > unbound.conf <<EOF
server:
    interface: 127.0.0.1@$unbound_port
    port: $unbound_port
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    cache-max-ttl: 0
    cache-max-negative-ttl: 0
    num-threads: 1
    local-zone: "." refuse
    local-zone: "ott.test." transparent
stub-zone:
    name: "ott.test."
    stub-addr: 127.0.0.1@$check_port
remote-control:
    control-enable: no
EOF
for p in $knot_port $check_port; do
    for _ in $(seq 200); do kdig @127.0.0.1 -p $p +short +time=1 +retry=0 ott.test SOA 2>/dev/null | grep -q ns1 && break; sleep 0.05; done
done
unbound -d -c unbound.conf >unbound.log 2>&1 &
pids+=($!)
for _ in $(seq 200); do kdig @127.0.0.1 -p $unbound_port +short +time=1 +retry=0 ott.test SOA 2>/dev/null | grep -q ns1 && break; sleep 0.05; done

# ---- pebble, validating through unbound
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
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config pebble.json -dnsserver 127.0.0.1:$unbound_port >pebble.log 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -fsS --cacert ca.pem "https://127.0.0.1:$acme_port/dir" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fsS --cacert ca.pem "https://127.0.0.1:$mgmt_port/roots/0" > root.pem

# ---- the exec provider's hook: knsupdate, as a user would write it
cat > hook.sh <<EOF
#!/bin/sh
case "\$1" in present) op=add;; cleanup) op=delete;; *) exit 2;; esac
printf 'server 127.0.0.1 $knot_port\nzone ott.test.\nupdate %s %s 60 TXT "%s"\nsend\n' "\$op" "\$2" "\$3" |
    knsupdate -y hmac-sha256:bench-key.:$secret
EOF
chmod 755 hook.sh
resolvers="\"127.0.0.1:$knot_port\""
[ -n "$secondary" ] && resolvers="$resolvers, \"127.0.0.1:$sec_port\""
if [ "$provider" = exec ]; then
    dns_yaml="dns: {provider: exec, exec: {command: \"$work/hook.sh\"}, resolvers: [$resolvers]}"
else
    dns_yaml="dns: {provider: rfc2136, rfc2136: {server: \"127.0.0.1:$knot_port\", key_name: bench-key, key_secret: \"$secret\"}, resolvers: [$resolvers]}"
fi

now_ms() { date +%s%3N; }
results=() waits=() orders=()
echo "ott-edge: $bin; pebble on 127.0.0.1:$acme_port via unbound; knotd 127.0.0.1:$knot_port${secondary:+ + secondary 127.0.0.1:$sec_port}; provider $provider;" \
    "ott.test + *.ott.test; $runs runs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$runs"); do
    rm -rf state && cat > edge.yaml <<YAML
domains: [ott.test, "*.ott.test"]
upstream: http://127.0.0.1:9
state_dir: $work/state
listen: {https: "127.0.0.1:$tls_port", http: "127.0.0.1:$http_port", admin: "127.0.0.1:$admin_port"}
shutdown: {delay: 0s, grace: 1s}
acme:
  directory: "https://127.0.0.1:$acme_port/dir"
  ca_file: "$work/ca.pem"
  challenges: [dns-01]
  $dns_yaml
YAML
    t0=$(now_ms)
    "$bin" --config edge.yaml 2>edge.log &
    edge=$!
    ok=0
    for _ in $(seq 3000); do # bounded: ~30 s at worst
        if curl -s -o /dev/null --max-time 1 --cacert root.pem --resolve "www.ott.test:$tls_port:127.0.0.1" \
            "https://www.ott.test:$tls_port/" 2>/dev/null; then ok=1; break; fi
        sleep 0.01
    done
    t1=$(now_ms)
    [ -n "${BENCH_VERBOSE:-}" ] && grep -E "acme_" edge.log >&2
    kill -TERM "$edge" 2>/dev/null || true
    wait "$edge" 2>/dev/null || true
    [ "$ok" = 1 ] || { echo "run $i: no valid certificate served; log:" >&2; cat edge.log >&2; exit 1; }
    order_ms=$(sed -n 's/.*acme_certificate_installed.*duration_ms=\([0-9]*\).*/\1/p' edge.log | head -1)
    wait_ms=$(sed -n 's/.*acme_dns_propagated.*waited_ms=\([0-9]*\).*/\1/p' edge.log | head -1)
    present_ms=$(sed -n 's/.*acme_dns_present.*duration_ms=\([0-9]*\).*/\1/p' edge.log | awk '{s+=$1} END {print s+0}')
    for _ in $(seq 50); do # the removals reach the secondary a moment later
        left=$( (kdig @127.0.0.1 -p $knot_port +short _acme-challenge.ott.test TXT; kdig @127.0.0.1 -p $check_port +short _acme-challenge.ott.test TXT) | wc -l)
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    printf 'run %2d: %4d ms start to verified wildcard handshake; order %4s ms; propagation wait %3s ms; writing 2 records %3s ms; records left %s\n' \
        "$i" $((t1 - t0)) "$order_ms" "$wait_ms" "$present_ms" "$left"
    results+=($((t1 - t0))) waits+=("$wait_ms") orders+=("$order_ms")
    sleep 0.2
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d (min %d, max %d)", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "start to verified wildcard handshake: median $(med "${results[@]}") ms"
echo "order (ott-edge's own log):           median $(med "${orders[@]}") ms"
echo "of which propagation wait:            median $(med "${waits[@]}") ms"
