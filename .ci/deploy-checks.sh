#!/usr/bin/env bash
# Static checks of the deployment files (no Docker engine, no Kubernetes needed):
#   - docker-compose.yml: `docker-compose config -q` (Debian's docker-compose, no engine),
#     the wiring ott-edge expects, and `ott-edge check-config` on its OTT_EDGE_* variables;
#   - Dockerfile, deploy/single-container/Dockerfile: stages, user, volume, ports,
#     STOPSIGNAL, HEALTHCHECK, COPY sources vs .dockerignore; the single-container bundle
#     really runs in an empty chroot (no host libraries, as on OTT's Alpine image);
#   - deploy/kubernetes/: every document against the Kubernetes API types, offline
#     (deploy/check/validate-k8s.mjs), the sidecar/probe/grace wiring, check-config on the
#     ConfigMap;
#   - deploy/systemd/ott-edge.service: `systemd-analyze verify` (any warning fails), the
#     promised hardening, check-config on deploy/systemd/config.yaml;
#   - a negative self-test per validator: a deliberately broken copy must be rejected, so
#     no check can pass vacuously.
# Usage: .ci/deploy-checks.sh    (env OTT_EDGE_BIN: the binary; default build/ott-edge,
#                                 built with tools/build.sh when missing)
# Ends with "deploy-checks: N passed, M failed"; exit 1 on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d /tmp/ott-edge-deploy-checks.XXXXXX)
edge_pid=""
cleanup() {
    [ -n "$edge_pid" ] && kill -9 "$edge_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS  $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && sed 's/^/      /' "$2" | head -40; }
# check NAME CMD...: passes when CMD exits 0.
check() {
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name" "$work/out"; fi
}
# reject NAME REGEX CMD...: the negative self-test; passes when CMD fails AND its output
# matches REGEX (it failed for the planted reason, not for another one).
reject() {
    local name=$1 re=$2; shift 2
    if "$@" >"$work/out" 2>&1; then
        bad "$name (a broken copy was accepted)" "$work/out"
    elif ! grep -Eq -- "$re" "$work/out"; then
        bad "$name (failed, but not with /$re/)" "$work/out"
    else
        ok "$name"
    fi
}

# ------------------------------------------------------------------------------- tools
apt_missing=()
command -v docker-compose >/dev/null || apt_missing+=(docker-compose)
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
command -v patchelf >/dev/null || apt_missing+=(patchelf)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "deploy-checks: installing ${apt_missing[*]}" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "deploy-checks: node is needed" >&2; exit 1; }
if [ ! -d deploy/check/node_modules/kubernetes-types ] || [ ! -d deploy/check/node_modules/typescript ]; then
    (cd deploy/check && npm ci --no-audit --no-fund --silent) || { echo "deploy-checks: npm ci in deploy/check failed" >&2; exit 1; }
fi
bin=${OTT_EDGE_BIN:-$root/build/ott-edge}
if [ ! -x "$bin" ]; then
    echo "deploy-checks: $bin missing: building it" >&2
    tools/build.sh "$root/build" >/dev/null || { echo "deploy-checks: build failed" >&2; exit 1; }
    bin=$root/build/ott-edge
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# check-config with only the given KEY=VALUE lines (file $1) as environment.
check_config_env() { env -i PATH=/usr/bin:/bin $(cat "$1") "$bin" check-config; }

# ------------------------------------------------------------------------------ compose
compose() { docker-compose -f "$1" --project-directory "$root" --env-file .env.example "${@:2}"; }
check "compose: docker-compose config -q" compose docker-compose.yml config -q
compose docker-compose.yml config >"$work/compose.yaml" 2>"$work/compose.err"
check "compose: wiring (80/443, upstream ott:8080, named volume, TRUST_PROXY=1)" \
    sh -c "node deploy/check/wiring.mjs compose '$work/compose.yaml' >'$work/compose.env'"
check "compose: ott-edge check-config with the service's OTT_EDGE_* variables" check_config_env "$work/compose.env"

# negative: a misspelt key, and a wrong wiring, must be rejected
sed 's/^    environment:/    enviroment:/' docker-compose.yml >"$work/bad-compose.yml"
reject "compose (self-test): misspelt 'enviroment' rejected by docker-compose config" "enviroment" compose "$work/bad-compose.yml" config -q
sed 's/"443:443"/"8443:443"/; s#http://ott:8080#http://ott:3000#' docker-compose.yml >"$work/bad-wiring.yml"
compose "$work/bad-wiring.yml" config >"$work/bad-wiring.yaml" 2>/dev/null
reject "compose (self-test): wrong port and upstream rejected by the wiring check" "publish 443:443" \
    node deploy/check/wiring.mjs compose "$work/bad-wiring.yaml"
printf 'OTT_EDGE_DOMAIN=ott.example.com\n' >"$work/bad.env"
reject "compose (self-test): a misspelt OTT_EDGE_ variable rejected by check-config" "OTT_EDGE_DOMAIN" check_config_env "$work/bad.env"

# --------------------------------------------------------------------------- Dockerfiles
check "Dockerfile: stages, user 10001, volume, ports, STOPSIGNAL, HEALTHCHECK, COPY vs .dockerignore" \
    node deploy/check/wiring.mjs dockerfile Dockerfile .dockerignore
check "single-container Dockerfile: OTT base, ENTRYPOINT ott-edge --, COPY vs .dockerignore" \
    node deploy/check/wiring.mjs single-dockerfile deploy/single-container/Dockerfile .dockerignore
grep -v '^STOPSIGNAL' Dockerfile >"$work/Dockerfile.bad"
reject "Dockerfile (self-test): missing STOPSIGNAL rejected" "STOPSIGNAL" node deploy/check/wiring.mjs dockerfile "$work/Dockerfile.bad" .dockerignore
printf '*\n!cmd\n!pkg\n!tests\n!CMakeLists.txt\n' >"$work/dockerignore.bad"
reject "Dockerfile (self-test): a .dockerignore that drops tools/ rejected" "tools/deps.sh is excluded" \
    node deploy/check/wiring.mjs dockerfile Dockerfile "$work/dockerignore.bad"

# The single-container bundle must run with no host libraries at all (OTT's image is musl).
chroot_dir=$work/chroot
bundle_run() {
    DESTDIR=$chroot_dir deploy/single-container/bundle.sh "$bin" /opt/ott-edge || return 1
    mkdir -p "$chroot_dir/etc" "$chroot_dir/tmp" "$chroot_dir/state"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$chroot_dir/etc/hosts"
    chroot "$chroot_dir" /opt/ott-edge/bin/ott-edge --version || return 1
    local ports
    ports=$(node -e 'const n=require("net");const g=()=>new Promise(r=>{const s=n.createServer();s.listen(0,"127.0.0.1",()=>{const p=s.address().port;s.close(()=>r(p))})});(async()=>console.log((await g())+" "+(await g())+" "+(await g())))()')
    set -- $ports
    # A domain and an (unreachable) ACME directory: ACME starts, so ott-edge dlopen()s
    # libcurl.so.4 from the bundle, or stops with startup_failed.
    env -i OTT_EDGE_LISTEN_HTTPS="127.0.0.1:$1" OTT_EDGE_LISTEN_HTTP="127.0.0.1:$2" OTT_EDGE_LISTEN_ADMIN="127.0.0.1:$3" \
        OTT_EDGE_STATE_DIR=/state OTT_EDGE_UPSTREAM=http://127.0.0.1:9 OTT_EDGE_SHUTDOWN_DELAY=0s \
        OTT_EDGE_DOMAINS=bundle.ott-edge.test OTT_EDGE_ACME_DIRECTORY=https://127.0.0.1:9/dir \
        "$(command -v chroot)" "$chroot_dir" /opt/ott-edge/bin/ott-edge >"$work/chroot.log" 2>&1 &
    edge_pid=$!
    local i
    for i in $(seq 50); do
        "$bin" healthcheck --admin "127.0.0.1:$3" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$bin" healthcheck --admin "127.0.0.1:$3" || { cat "$work/chroot.log"; return 1; }
    # the ACME thread's first attempt (it fails at once: nothing listens on port 9)
    for i in $(seq 50); do
        grep -q 'acme_failed\|acme_next_attempt\|startup_failed' "$work/chroot.log" && break
        sleep 0.1
    done
    kill -TERM "$edge_pid"
    for i in $(seq 100); do kill -0 "$edge_pid" 2>/dev/null || break; sleep 0.1; done
    wait "$edge_pid"; local rc=$?
    edge_pid=""
    [ "$rc" -eq 0 ] || { echo "exit $rc"; cat "$work/chroot.log"; return 1; }
    grep -q 'acme_failed\|acme_next_attempt' "$work/chroot.log" || { echo "ACME did not run:"; cat "$work/chroot.log"; return 1; }
    ! grep -q 'startup_failed\|cannot load libcurl' "$work/chroot.log" || { cat "$work/chroot.log"; return 1; }
}
check "single-container: the bundled binary serves (TLS, admin), loads libcurl for ACME and drains in an empty chroot" bundle_run

# ---------------------------------------------------------------------------- Kubernetes
check "kubernetes: every manifest matches the Kubernetes API types (offline)" node deploy/check/validate-k8s.mjs deploy/kubernetes
check "kubernetes: wiring (native sidecar, probes, grace, security context, PVC, Service)" \
    sh -c "node deploy/check/wiring.mjs kubernetes deploy/kubernetes >'$work/k8s-config.yaml'"
check "kubernetes: ott-edge check-config on the ConfigMap's config.yaml" "$bin" check-config --config "$work/k8s-config.yaml"

mkdir -p "$work/k8s-bad1" "$work/k8s-bad2"
cp deploy/kubernetes/*.yaml "$work/k8s-bad1/"
sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' "$work/k8s-bad1/deployment.yaml"
reject "kubernetes (self-test): misspelt 'readOnlyRootFilesytem' rejected by the schema check" "readOnlyRootFilesytem" \
    node deploy/check/validate-k8s.mjs "$work/k8s-bad1"
cp deploy/kubernetes/*.yaml "$work/k8s-bad2/"
sed -i 's/terminationGracePeriodSeconds: 45/terminationGracePeriodSeconds: 20/; s/restartPolicy: Always/restartPolicy: OnFailure/' "$work/k8s-bad2/deployment.yaml"
reject "kubernetes (self-test): no native sidecar and a short grace rejected by the wiring check" "restartPolicy: Always" \
    node deploy/check/wiring.mjs kubernetes "$work/k8s-bad2"

# ------------------------------------------------------------------------------- systemd
# verify needs ExecStart's binary to exist: check a copy pointing at the built binary.
# Any output (an unknown key is only a warning to systemd) counts as a failure.
verify_unit() {
    local unit=$work/$(basename "$1")
    sed "s#/usr/local/bin/ott-edge#$bin#g" "$1" >"$unit"
    local out
    out=$(systemd-analyze verify "$unit" 2>&1); local rc=$?
    [ -z "$out" ] && [ $rc -eq 0 ] || { echo "$out"; return 1; }
}
check "systemd: systemd-analyze verify ott-edge.service" verify_unit deploy/systemd/ott-edge.service
check "systemd: hardening (DynamicUser, CAP_NET_BIND_SERVICE only, ProtectSystem=strict, StateDirectory, ExecReload HUP)" \
    node deploy/check/wiring.mjs systemd deploy/systemd/ott-edge.service
check "systemd: ott-edge check-config on deploy/systemd/config.yaml" "$bin" check-config --config deploy/systemd/config.yaml
mkdir -p "$work/bad-unit"
sed 's/^ProtectSystem=strict/ProtectSytem=strict/' deploy/systemd/ott-edge.service >"$work/bad-unit/ott-edge.service"
reject "systemd (self-test): misspelt 'ProtectSytem' rejected by verify" "ProtectSytem" verify_unit "$work/bad-unit/ott-edge.service"
printf 'domains: [ott.example.com]\nupstrem: http://127.0.0.1:8080\n' >"$work/bad-config.yaml"
reject "config (self-test): misspelt 'upstrem' rejected by check-config" "upstrem" "$bin" check-config --config "$work/bad-config.yaml"

echo "deploy-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
