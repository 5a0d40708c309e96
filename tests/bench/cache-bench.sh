#!/usr/bin/env bash
# cache-bench.sh — what the edge cache and compression buy on OTT-like assets (issue 8).
# Not a ctest test: a benchmark that prints two small tables.
#
#   tests/bench/cache-bench.sh [--seconds N] [--rounds N] [--assets DIR]
#   env: OTT_EDGE_BIN (default build/ott-edge), BENCH_PORT_BASE (default 27600)
#
#   1. Throughput of a 200 KiB minified JS asset through ott-edge, cache on vs off, against a
#      Node upstream (tests/upstream/assets-upstream.mjs) that reads the file from disk on
#      every request like express.static: wrk -t2 -c64 -dN over HTTPS/1.1 (TLS 1.3, one
#      suite), once without Accept-Encoding (identity) and once with "gzip, deflate, br" (what
#      browsers send), plus the no-proxy ceiling straight to the upstream. Upstream requests
#      seen during each run are counted.
#   2. Bytes on the wire (response body) for OTT-like HTML, JS and CSS with no compression,
#      gzip and brotli as ott-edge sends them at its default compress.level, and the time to
#      compress each body once (from tests/bench/cache/measure-encodings.mjs, in-process).
#
# Assets: real minified files from npm (vuetify's dist: the UI kit OTT uses) installed into
# a temp dir with `npm install` (--assets DIR to use your own app.js/app.css/index.html
# instead). Without network, a generated JS-like text stands in (noted in the output).
# Loopback only; every wait is bounded; only processes it started are stopped (by PID);
# its temp dir is removed at exit.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${OTT_EDGE_BIN:-$root/build/ott-edge}
base=${BENCH_PORT_BASE:-27600}
secs=10 rounds=1 assets=""
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) secs=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --assets) assets=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "cache-bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for t in wrk curl openssl node; do
    command -v $t >/dev/null || { echo "cache-bench.sh: needs $t (apt-get install wrk curl openssl)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "cache-bench.sh: no ott-edge at $bin (build it or set OTT_EDGE_BIN)" >&2; exit 1; }

work=$(mktemp -d /tmp/ott-edge-cache-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

up_port=$base edge_on=$((base + 1)) edge_off=$((base + 2)) admin_on=$((base + 3)) admin_off=$((base + 4))

# --------------------------------------------------------------------------- assets
mkdir -p "$work/www"
note=""
if [ -n "$assets" ]; then
    cp "$assets"/app.js "$assets"/app.css "$assets"/index.html "$work/www/" || exit 1
elif (cd "$work" && timeout 120 npm install --no-save --no-audit --no-fund --silent --prefix "$work/npm" vuetify@3 vue@3 >/dev/null 2>&1); then
    d=$work/npm/node_modules/vuetify/dist
    head -c 204800 "$d/vuetify.min.js" >"$work/www/app.js"  # 200 KiB of real minified JS
    cp "$d/vuetify.min.css" "$work/www/app.css"
    note="assets: vuetify@$(node -p "require('$work/npm/node_modules/vuetify/package.json').version") dist (JS cut to 200 KiB), vite-style index.html"
else
    node -e "let s='',i=0,x=7;while(s.length<204800){x=(x*1103515245+12345)&0x7fffffff;
      s+='function f'+(x%4096).toString(36)+'(e,t){return e.p'+(i++%97)+'?t+'+(x%1000)+':void 0}';}
      process.stdout.write(s.slice(0,204800))" >"$work/www/app.js"
    cp "$work/www/app.js" "$work/www/app.css"
    note="assets: npm unreachable: GENERATED text stands in (ratios are not representative)"
fi
if [ ! -f "$work/www/index.html" ]; then # what vite builds for an app like OTT's client
    cat >"$work/www/index.html" <<'EOF'
<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta http-equiv="X-UA-Compatible" content="IE=edge" />
    <meta name="viewport" content="width=device-width,initial-scale=1.0" />
    <meta name="description" content="Watch videos together with your friends, in sync." />
    <meta property="og:title" content="OpenTogetherTube" />
    <meta property="og:type" content="website" />
    <meta property="og:description" content="Watch videos together with your friends, in sync." />
    <link rel="icon" href="/favicon.ico" />
    <link rel="manifest" href="/manifest.json" />
    <title>OpenTogetherTube</title>
    <script type="module" crossorigin src="/assets/index-4f1c2a9e.js"></script>
    <link rel="modulepreload" crossorigin href="/assets/vendor-vue-8d2e61b0.js">
    <link rel="modulepreload" crossorigin href="/assets/vendor-vuetify-13ab77c4.js">
    <link rel="stylesheet" href="/assets/index-7be5a0d1.css">
    <link rel="stylesheet" href="/assets/vendor-vuetify-0c9f3e22.css">
  </head>
  <body>
    <noscript>
      <strong>We're sorry but OpenTogetherTube doesn't work properly without JavaScript enabled. Please enable it to continue.</strong>
    </noscript>
    <div id="app"></div>
  </body>
</html>
EOF
fi

# --------------------------------------------------------------------------- processes
cd "$work" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout key.pem -out cert.pem 2>/dev/null || exit 1

wait_url() { # url: bounded wait for any HTTP answer
    for _ in $(seq 100); do curl -sk -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
    echo "cache-bench.sh: nothing answers at $1" >&2
    return 1
}

node "$root/tests/upstream/assets-upstream.mjs" --port $up_port --dir "$work/www" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$up_port/count" || exit 1

start_edge() { # name port admin cache_enabled
    cat >"$work/$1.yaml" <<EOF
threads: 2
upstream: http://127.0.0.1:$up_port
state_dir: $work/state-$1
listen:
  https: 127.0.0.1:$2
  http: ""
  admin: 127.0.0.1:$3
tls:
  cert_file: $work/cert.pem
  key_file: $work/key.pem
acme:
  enabled: false
log:
  access: false
cache:
  enabled: $4
EOF
    "$bin" --config "$work/$1.yaml" >"$work/$1.log" 2>&1 &
    pids+=($!)
    wait_url "https://127.0.0.1:$2/assets/app.js" || { cat "$work/$1.log" >&2; exit 1; }
}
start_edge on $edge_on $admin_on true
start_edge off $edge_off $admin_off false

upcount() {
    local c
    c=$(curl -s --max-time 5 "http://127.0.0.1:$up_port/count?path=/assets/app.js" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
    if [ -z "$c" ]; then
        echo "cache-bench.sh: the upstream stopped answering; its log:" >&2
        tail -20 "$work/upstream.log" >&2
        exit 1
    fi
    echo "$c"
}

# --------------------------------------------------------------------------- 1. throughput
run_wrk() { # url [accept-encoding] -> "req/s MB/s"
    local hdr=()
    [ -n "${2:-}" ] && hdr=(-H "Accept-Encoding: $2")
    OPENSSL_CONF=$here/client-openssl.cnf timeout $((secs + 30)) wrk -t2 -c64 -d"${secs}s" "${hdr[@]}" "$1" >"$work/wrk.out" 2>&1
    local rps tr
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
    tr=$(awk '/^Transfer\/sec/ {print $2}' "$work/wrk.out")
    if grep -q "Non-2xx\|Socket errors" "$work/wrk.out"; then tr="$tr (errors: $(grep -h 'Non-2xx\|Socket errors' "$work/wrk.out" | tr -s ' ' | tr '\n' ' '))"; fi
    echo "${rps:-?} ${tr:-?}"
}

echo "ott-edge cache benchmark — $(nproc) cores shared by wrk, ott-edge (2 threads) and Node; ${secs}s per run, $rounds round(s)"
[ -n "$note" ] && echo "$note"
echo
printf '%-44s %14s %14s %12s\n' "200 KiB JS asset, wrk -t2 -c64 HTTPS/1.1" "req/s" "transfer/s" "upstream req"
for r in $(seq "$rounds"); do
    for row in "direct:none" "off:none" "on:none" "off:gzip, deflate, br" "on:gzip, deflate, br"; do
        which=${row%%:*} ae=${row#*:}
        [ "$ae" = none ] && ae=""
        case $which in
        direct) url="http://127.0.0.1:$up_port/assets/app.js" label="no proxy (Node from disk, plain HTTP)" ;;
        on) url="https://127.0.0.1:$edge_on/assets/app.js" label="ott-edge, cache on" ;;
        off) url="https://127.0.0.1:$edge_off/assets/app.js" label="ott-edge, cache off" ;;
        esac
        [ -n "$ae" ] && label="$label, br" || label="$label, identity"
        [ "$which" = direct ] && label="no proxy (Node from disk)"
        c0=$(upcount) || exit 1
        set -- $(run_wrk "$url" "$ae")
        sleep 1 # requests still in flight when wrk stopped belong to this row
        c1=$(upcount) || exit 1
        printf '%-44s %14s %14s %12s\n' "$label" "$1" "$2" "$((c1 - c0))"
    done
done

# --------------------------------------------------------------------------- 2. bytes on the wire
echo
printf '%-12s %10s %10s %8s %10s %8s   %s\n' "asset" "identity" "gzip" "saved" "br" "saved" "(bytes of body as ott-edge sends them, compress.level default)"
for f in index.html app.js app.css; do
    id=$(curl -sk --http2 -o /dev/null -w '%{size_download}' "https://127.0.0.1:$edge_off/assets/$f")
    gz=$(curl -sk --http2 -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "https://127.0.0.1:$edge_off/assets/$f")
    br=$(curl -sk --http2 -o /dev/null -H 'Accept-Encoding: br' -w '%{size_download}' "https://127.0.0.1:$edge_off/assets/$f")
    printf '%-12s %10s %10s %7s%% %10s %7s%%\n' "$f" "$id" "$gz" "$(( (id - gz) * 100 / id ))" "$br" "$(( (id - br) * 100 / id ))"
done
echo
echo "Compression cost and ratio by codec and level (node:zlib in-process; zstd via its CLI if installed):"
node "$here/cache/measure-encodings.mjs" "$work/www/index.html" "$work/www/app.js" "$work/www/app.css"
echo
m=$(curl -s "http://127.0.0.1:$admin_on/metrics")
echo "cache on: $(echo "$m" | grep -E '^ott_edge_cache_(hits|misses|coalesced)_total|^ott_edge_cache_stored_bytes' | tr '\n' ' ')"
