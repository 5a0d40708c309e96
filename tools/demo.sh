#!/usr/bin/env bash
# The local demo behind `make run`: everything on loopback, stopped with Ctrl-C.
#   - the OTT-like test upstream (a page that opens a WebSocket to /api/room/demo)
#   - a local ACME server (pebble + its mock DNS), unless --self-signed
#   - ott-edge in front, getting a real certificate for demo.ott-edge.test from it
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${OTT_EDGE_BIN:-$here/build/ott-edge}
mode=acme
[ "${1:-}" = "--self-signed" ] && mode=self-signed
name=demo.ott-edge.test
https_port=${DEMO_HTTPS_PORT:-8443} http_port=${DEMO_HTTP_PORT:-8081} admin_port=${DEMO_ADMIN_PORT:-9901}
up_port=${DEMO_UPSTREAM_PORT:-8080}
work=$(mktemp -d /tmp/ott-edge-demo.XXXXXX)
pids=()

cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup INT TERM EXIT

wait_http() { # url [curl args...]
  local url=$1; shift
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: $url did not come up" >&2; return 1
}

node "$here/tests/upstream/ott-upstream.mjs" --port "$up_port" --host 127.0.0.1 &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/api/status"

cat > "$work/config.yaml" <<YAML
domains: [$name]
upstream: http://127.0.0.1:$up_port
state_dir: $work/state
listen:
  https: 127.0.0.1:$https_port
  http: 127.0.0.1:$http_port
  admin: 127.0.0.1:$admin_port
shutdown: {delay: 0s, grace: 5s}
log: {access: true}
YAML

if [ "$mode" = acme ]; then
  echo "demo: starting a local ACME server (pebble) on 127.0.0.1:14000"
  (cd "$work" &&
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=pebble demo CA" \
     -keyout ca.key -out ca.pem 2>/dev/null &&
   openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout localhost.key \
     -out localhost.csr 2>/dev/null &&
   printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf &&
   openssl x509 -req -in localhost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf \
     -out localhost.pem 2>/dev/null)
  cat > "$work/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$work/localhost.pem", "privateKey": "$work/localhost.key",
  "httpPort": $http_port, "tlsPort": $https_port, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": 86400}}
JSON
  pebble-challtestsrv -dns01 127.0.0.1:8053 -http01 "" -https01 "" -tlsalpn01 "" \
    -management 127.0.0.1:8055 -defaultIPv6 "" >"$work/challtestsrv.log" 2>&1 &
  pids+=($!)
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$work/pebble.json" -dnsserver 127.0.0.1:8053 >"$work/pebble.log" 2>&1 &
  pids+=($!)
  wait_http https://127.0.0.1:14000/dir --cacert "$work/ca.pem"
  cat >> "$work/config.yaml" <<YAML
acme:
  directory: https://127.0.0.1:14000/dir
  ca_file: $work/ca.pem
  email: demo@ott-edge.test
YAML
fi

"$bin" --config "$work/config.yaml" &
pids+=($!)
wait_http "http://127.0.0.1:$admin_port/livez"

if [ "$mode" = acme ]; then
  printf 'demo: obtaining a certificate for %s from the local ACME server ' "$name"
  for i in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$admin_port/readyz" 2>/dev/null; then break; fi
    printf '.'; sleep 0.2
    [ "$i" = 300 ] && { echo; echo "demo: no certificate after 60 s; see the log above" >&2; exit 1; }
  done
  echo " done"
  curl -fsS --cacert "$work/ca.pem" https://127.0.0.1:15000/roots/0 > "$work/demo-root.pem"
  cp "$work/demo-root.pem" /tmp/ott-edge-demo-root.pem
  trust="--cacert /tmp/ott-edge-demo-root.pem"
  echo "demo: the certificate verifies against the demo CA's root: saved to /tmp/ott-edge-demo-root.pem"
else
  trust="-k"
fi

cat <<MSG

  ott-edge demo is up ($mode certificate), all on loopback:
    page (h2):     https://$name:$https_port/
    WebSocket:     wss://$name:$https_port/api/room/demo
    HTTP→HTTPS:    http://127.0.0.1:$http_port/  (308)
    admin:         http://127.0.0.1:$admin_port/readyz  /livez  /metrics

  Try:  curl $trust --http2 --resolve $name:$https_port:127.0.0.1 https://$name:$https_port/api/status
  Browser: map $name to 127.0.0.1 (e.g. chromium --host-resolver-rules="MAP $name 127.0.0.1")
MSG
[ "$mode" = acme ] && echo "  and trust the demo CA (import /tmp/ott-edge-demo-root.pem), or open it and accept the warning."
echo; echo "  Ctrl-C stops everything this demo started."
wait "${pids[@]}"
