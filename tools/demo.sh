#!/usr/bin/env bash
# The local demo behind `make run` / tools/run.sh: everything on loopback, stopped with Ctrl-C.
#   - the OTT-like test upstream (a page that opens a WebSocket to /api/room/demo)
#   - a local ACME server (pebble + its mock DNS pebble-challtestsrv), unless --self-signed
#   - ott-edge in front, getting a real certificate for demo.ott-edge.test from it (HTTP-01)
#
# Usage: tools/demo.sh [--self-signed]
#   --self-signed   no ACME server: ott-edge serves its generated self-signed certificate
# Environment (all optional):
#   OTT_EDGE_BIN            the binary (default build/ott-edge)
#   DEMO_HTTPS_PORT 8443    DEMO_HTTP_PORT 8081    DEMO_ADMIN_PORT 9901   DEMO_UPSTREAM_PORT 8080
#   DEMO_ACME_PORT 14000    DEMO_ACME_MGMT_PORT 15000  DEMO_DNS_PORT 8053  DEMO_DNS_MGMT_PORT 8055
#   DEMO_ROOT_FILE          where the demo CA's root is saved (default /tmp/ott-edge-demo-root.pem)
#   DEMO_CERT_TIMEOUT       seconds to wait for the certificate (default 90)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${OTT_EDGE_BIN:-$here/build/ott-edge}
mode=acme
for a in "$@"; do
  case "$a" in
    --self-signed) mode=self-signed ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
name=demo.ott-edge.test
https_port=${DEMO_HTTPS_PORT:-8443} http_port=${DEMO_HTTP_PORT:-8081} admin_port=${DEMO_ADMIN_PORT:-9901}
up_port=${DEMO_UPSTREAM_PORT:-8080}
acme_port=${DEMO_ACME_PORT:-14000} acme_mgmt_port=${DEMO_ACME_MGMT_PORT:-15000}
dns_port=${DEMO_DNS_PORT:-8053} dns_mgmt_port=${DEMO_DNS_MGMT_PORT:-8055}
root_file=${DEMO_ROOT_FILE:-/tmp/ott-edge-demo-root.pem}
cert_timeout=${DEMO_CERT_TIMEOUT:-90}

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preflight
[ -x "$bin" ] || die "no ott-edge binary at $bin: build it first (tools/build.sh), or run tools/run.sh which does"
need=(node curl openssl)
[ "$mode" = acme ] && need+=(pebble pebble-challtestsrv)
for c in "${need[@]}"; do
  command -v "$c" >/dev/null || die "$c is not installed: run tools/deps.sh test (or tools/run.sh)"
done
[ -d "$here/tests/node_modules/ws" ] || die "the test upstream needs Node's ws: run (cd tests && npm ci)"
ports=("$https_port" "$http_port" "$admin_port" "$up_port")
[ "$mode" = acme ] && ports+=("$acme_port" "$acme_mgmt_port" "$dns_port" "$dns_mgmt_port")
for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p on 127.0.0.1 is already in use: stop what uses it or pick other ports (DEMO_*_PORT, see --help)"
  fi
done

work=$(mktemp -d /tmp/ott-edge-demo.XXXXXX)
pids=() names=()
failed=0

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  echo
  say "stopping ${#pids[@]} processes: ${names[*]:-none}"
  local p i follower=""
  for i in "${!pids[@]}"; do
    if [ "${names[$i]}" = log-follower ]; then follower=${pids[$i]}; else kill -TERM "${pids[$i]}" 2>/dev/null || true; fi
  done
  # ott-edge drains for up to shutdown.grace (5 s); then anything left is killed
  for _ in $(seq 1 70); do
    local alive=0
    for p in "${pids[@]}"; do [ "$p" != "$follower" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  [ -n "$follower" ] && sleep 0.3 # let the follower print ott-edge's last lines
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$failed" = 1 ]; then
    for f in ott-edge pebble challtestsrv upstream; do
      [ -s "$work/$f.log" ] && { echo "--- last lines of $f.log ---"; tail -n 15 "$work/$f.log"; }
    done
  fi
  rm -rf "$work"
  say "stopped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Each child runs in its own session (setsid), so a Ctrl-C reaches only this script, whose
# trap then stops them in order (ott-edge drains) instead of all racing on the same SIGINT.
start() { # name command... (output to $work/name.log)
  local n=$1; shift
  setsid "$@" >"$work/$n.log" 2>&1 < /dev/null &
  pids+=($!) names+=("$n")
}

wait_http() { # what url [curl args...]
  local what=$1 url=$2; shift 2
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null && return 0
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null || { failed=1; die "${names[$i]} exited while starting (log below)"; }
    done
    sleep 0.1
  done
  failed=1; die "$what did not answer at $url within 15 s"
}

# ---------------------------------------------------------------- the stack
steps=2; [ "$mode" = acme ] && steps=4
printf 'demo: [1/%d] OTT-like upstream on http://127.0.0.1:%s ... ' $steps "$up_port"
start upstream node "$here/tests/upstream/ott-upstream.mjs" --port "$up_port" --host 127.0.0.1
wait_http "the upstream" "http://127.0.0.1:$up_port/api/status"
echo ok

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
  printf 'demo: [2/%d] local ACME server (pebble) on https://127.0.0.1:%s/dir ... ' $steps "$acme_port"
  # pebble's own HTTPS listener needs a certificate: a throw-away CA ott-edge is told to trust
  (cd "$work" &&
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=pebble demo listener CA" \
     -keyout ca.key -out ca.pem 2>/dev/null &&
   openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout localhost.key \
     -out localhost.csr 2>/dev/null &&
   printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf &&
   openssl x509 -req -in localhost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf \
     -out localhost.pem 2>/dev/null)
  # httpPort: where pebble fetches HTTP-01 answers = ott-edge's HTTP listener; names resolve
  # to 127.0.0.1 through the mock DNS. Real validation (no PEBBLE_VA_ALWAYS_VALID).
  cat > "$work/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$acme_mgmt_port",
  "certificate": "$work/localhost.pem", "privateKey": "$work/localhost.key",
  "httpPort": $http_port, "tlsPort": $https_port, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": 86400}}
JSON
  start challtestsrv pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$dns_mgmt_port" -defaultIPv6 ""
  start pebble env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$work/pebble.json" -dnsserver "127.0.0.1:$dns_port"
  wait_http "pebble" "https://127.0.0.1:$acme_port/dir" --cacert "$work/ca.pem"
  echo ok
  cat >> "$work/config.yaml" <<YAML
acme:
  directory: https://127.0.0.1:$acme_port/dir
  ca_file: $work/ca.pem
  email: demo@ott-edge.test
  challenges: [http-01]
YAML
else
  # no certificate file and ACME off: ott-edge generates and serves a self-signed one
  printf 'acme: {enabled: false}\n' >> "$work/config.yaml"
fi

printf 'demo: [%d/%d] ott-edge on 127.0.0.1:%s (HTTPS), :%s (HTTP), :%s (admin) ... ' $((steps == 4 ? 3 : 2)) $steps \
  "$https_port" "$http_port" "$admin_port"
# OTT_EDGE_* variables are configuration keys for ott-edge: do not pass ours (e.g. OTT_EDGE_BIN)
unset_env=()
for v in $(compgen -e | grep '^OTT_EDGE_' || true); do unset_env+=(-u "$v"); done
start ott-edge env "${unset_env[@]}" "$bin" --config "$work/config.yaml"
wait_http "ott-edge" "http://127.0.0.1:$admin_port/livez"
echo ok

# ---------------------------------------------------------------- the certificate, with progress
# ott-edge's log lines (text format: "... event key=value ...") turned into progress notes.
progress() {
  local line=$1 v
  case "$line" in
    *acme_account_key_created*) echo "        - account key created" ;;
    *acme_account\ *) echo "        - ACME account registered" ;;
    *acme_order_start*) echo "        - new order for $name" ;;
    *acme_challenge\ *)
      v=$(sed -n 's/.*type=\([a-z0-9-]*\).*/\1/p' <<<"$line")
      echo "        - answering the ${v:-?} challenge: pebble now fetches http://$name:$http_port/.well-known/acme-challenge/..." ;;
    *acme_authorization_valid*) echo "        - pebble validated the challenge" ;;
    *acme_finalize*) echo "        - order finalized (CSR sent)" ;;
    *acme_certificate_installed*)
      v=$(sed -n 's/.*not_after=\([0-9]*\).*/\1/p' <<<"$line")
      [ -n "$v" ] && v=$(date -u -d "@$v" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo "$v")
      installed=1
      echo "        - certificate installed${v:+ (valid until $v)}" ;;
    *acme_next_attempt*)
      v=$(sed -n 's/.*in_s=\([0-9]*\).*/\1/p' <<<"$line")
      if [ -z "$v" ]; then :
      elif [ "$installed" = 1 ]; then echo "        - renewal scheduled in $((v / 3600)) h $((v % 3600 / 60)) min"
      else echo "        - ott-edge retries in $v s"; fi ;;
    *acme_problem*|*acme_failed*|*ERROR*|*error=*) echo "        ! $line" ;;
  esac
}

if [ "$mode" = acme ]; then
  say "[4/$steps] obtaining a certificate for $name from the local ACME server"
  seen=0 quiet=0 installed=0
  for i in $(seq 1 $((cert_timeout * 5))); do
    if [ -s "$work/ott-edge.log" ]; then
      n=$(wc -l < "$work/ott-edge.log")
      if [ "$n" -gt "$seen" ]; then
        while IFS= read -r line; do progress "$line"; done < <(sed -n "$((seen + 1)),${n}p" "$work/ott-edge.log")
        seen=$n quiet=0
      fi
    fi
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$admin_port/readyz" 2>/dev/null; then break; fi
    kill -0 "${pids[-1]}" 2>/dev/null || { failed=1; die "ott-edge exited (log below)"; }
    quiet=$((quiet + 1))
    [ $((quiet % 25)) = 0 ] && echo "        ... still waiting ($((i / 5)) s)"
    [ "$i" = $((cert_timeout * 5)) ] && { failed=1; die "no certificate after $cert_timeout s (log below)"; }
    sleep 0.2
  done
  curl -fsS --cacert "$work/ca.pem" "https://127.0.0.1:$acme_mgmt_port/roots/0" > "$work/root.pem"
  cp "$work/root.pem" "$root_file"
  # check what a client sees: the chain verifies against the demo CA's root, over HTTP/2
  got=$(curl -sS --http2 --cacert "$root_file" --resolve "$name:$https_port:127.0.0.1" --max-time 5 \
    -o /dev/null -w '%{http_code} HTTP/%{http_version}' "https://$name:$https_port/api/status" 2>&1) ||
    { failed=1; die "the certificate does not verify against the demo root: $got"; }
  say "checked: https://$name:$https_port/api/status -> $got, certificate verified against the demo CA's root"
  trust=(--cacert "$root_file")
else
  got=$(curl -sS --http2 -k --resolve "$name:$https_port:127.0.0.1" --max-time 5 \
    -o /dev/null -w '%{http_code} HTTP/%{http_version}' "https://$name:$https_port/api/status" 2>&1) ||
    { failed=1; die "https://$name:$https_port/api/status failed: $got"; }
  say "checked: https://$name:$https_port/api/status -> $got (self-signed certificate, not verified)"
  trust=(-k)
fi
# and the WebSocket through ott-edge (Node's ws, trusting the same root)
ws_check=$(cd "$here/tests" && ROOT="${root_file}" MODE="$mode" timeout 10 node -e '
  const fs = require("fs"), WebSocket = require("ws");
  const opts = process.env.MODE === "acme" ? { ca: fs.readFileSync(process.env.ROOT) } : { rejectUnauthorized: false };
  // the demo name resolves to 127.0.0.1 here only
  const lookup = (h, o, cb) => (o && o.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4));
  const ws = new WebSocket(process.argv[1], { ...opts, lookup, handshakeTimeout: 5000 });
  ws.on("message", (m) => { console.log(String(m)); ws.close(); });
  ws.on("error", (e) => { console.log("error: " + e.message); process.exit(1); });
' "wss://$name:$https_port/api/room/demo" 2>&1) || { failed=1; die "WebSocket check failed: $ws_check"; }
say "checked: wss://$name:$https_port/api/room/demo -> $ws_check"

# ---------------------------------------------------------------- what to open
url="https://$name:$https_port/"
cat <<MSG

  ott-edge demo is up ($mode certificate), all on loopback:
    page (h2):    $url
    WebSocket:    wss://$name:$https_port/api/room/demo   (the page opens it and shows its state)
    HTTP:         http://127.0.0.1:$http_port/   (redirects to HTTPS)
    admin:        http://127.0.0.1:$admin_port/readyz  /livez  /metrics

  The name $name resolves to 127.0.0.1 only inside this demo. From this machine:
    curl ${trust[*]} --http2 --resolve $name:$https_port:127.0.0.1 https://$name:$https_port/api/status
MSG
if [ "$mode" = acme ]; then
  cat <<MSG

  Trust the demo CA (pebble made its root for this run; its key is gone when the demo stops):
    root:         $root_file
    Chromium, in a throw-away profile that trusts it (nothing changes in your own profile):
      h=\$(mktemp -d) && mkdir -p \$h/.pki/nssdb && certutil -d sql:\$h/.pki/nssdb -N --empty-password &&
      certutil -d sql:\$h/.pki/nssdb -A -t C,, -n ott-edge-demo -i $root_file &&
      HOME=\$h chromium --user-data-dir=\$h/profile --host-resolver-rules="MAP $name 127.0.0.1" $url
    Firefox:      Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import,
                  and map the name in /etc/hosts:  127.0.0.1 $name
    (If you import it anywhere permanent, remove it after the demo.)
MSG
else
  cat <<MSG

  The certificate is ott-edge's generated self-signed one: browsers warn; accept the warning
  (or: chromium --host-resolver-rules="MAP $name 127.0.0.1" $url).
MSG
fi
echo
say "ott-edge's log follows (access log on). Ctrl-C stops everything this demo started."
echo
setsid tail -n 0 -F "$work/ott-edge.log" 2>/dev/null < /dev/null &
pids+=($!) names+=(log-follower)

# run until Ctrl-C, or until one of the processes exits on its own
set +e
wait -n "${pids[@]}"
rc=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then failed=1; say "${names[$i]} exited on its own (status $rc)"; fi
done
exit 1
