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
#   - deploy/cluster/ and deploy/kubernetes-cluster/ (cluster mode): compose config, haproxy -c,
#     the API types, the replicas/Secret/ACL wiring, check-config of what the replicas read;
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
# The libraries ott-edge dlopen()s only for a feature (ldd does not list them) are bundled:
# check-config of DNS-01 + cluster mode + basic_auth loads libldns, hiredis and libcrypt
# from the chroot (or exits 2 naming the package); brotli is loaded at the first br response.
bundle_optional_libs() {
    printf 'alice:%s\n' "$(openssl passwd -6 -salt bundlesalt x)" >"$chroot_dir/tmp/htpasswd"
    env -i OTT_EDGE_STATE_DIR=/state OTT_EDGE_DOMAINS=bundle.ott-edge.test OTT_EDGE_ACME_DIRECTORY=https://127.0.0.1:9/dir \
        OTT_EDGE_ACME_CHALLENGES=dns-01 OTT_EDGE_ACME_DNS_PROVIDER=exec OTT_EDGE_ACME_DNS_EXEC_COMMAND=/bin/true \
        OTT_EDGE_CLUSTER_REDIS=redis://127.0.0.1:9 OTT_EDGE_ACCESS_BASIC_AUTH=/tmp/htpasswd \
        "$(command -v chroot)" "$chroot_dir" /opt/ott-edge/bin/ott-edge check-config >/dev/null || return 1
    [ -e "$chroot_dir/opt/ott-edge/lib/libbrotlienc.so.1" ] || { echo "libbrotlienc.so.1 is not in the bundle"; return 1; }
}
check "single-container: the libraries loaded only for DNS-01, cluster mode, basic_auth and br are bundled and load" \
    bundle_optional_libs
bundle_without_ldns() {
    mv "$chroot_dir/opt/ott-edge/lib/libldns.so.3" "$work/libldns.so.3" || return 0
    bundle_optional_libs
    local rc=$?
    mv "$work/libldns.so.3" "$chroot_dir/opt/ott-edge/lib/libldns.so.3"
    return $rc
}
reject "single-container (self-test): a bundle without libldns rejected" "install libldns3" bundle_without_ldns

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

# ------------------------------------------------------------------------- cluster mode
# deploy/cluster (Compose: three replicas behind HAProxy, OTT's Redis with an ACL file) and
# deploy/kubernetes-cluster (a Deployment with replicas: 3, the Redis URL and encryption key
# from a Secret, a Redis ACL user limited to ~ott-edge:*).
compose_cluster() { docker-compose -f "$1" --project-directory "$root/deploy/cluster" --env-file .env.example "${@:2}"; }
check "cluster compose: docker-compose config -q" compose_cluster deploy/cluster/docker-compose.yml config -q
sed 's/^    secrets:/    secretz:/' deploy/cluster/docker-compose.yml >"$work/bad-cluster-compose.yml"
reject "cluster compose (self-test): misspelt 'secretz' rejected by docker-compose config" "secretz" \
    compose_cluster "$work/bad-cluster-compose.yml" config -q
check "cluster compose: haproxy -c on deploy/cluster/haproxy.cfg" haproxy -c -q -f deploy/cluster/haproxy.cfg
# the replicas' shared environment, as ott-edge reads it (a Redis URL and a key file stand in for the secrets)
cluster_env() {
    compose_cluster deploy/cluster/docker-compose.yml config >"$work/cluster-compose.yaml" || return 1
    node --input-type=module -e '
        import { readFileSync } from "node:fs";
        import { createRequire } from "node:module";
        const YAML = createRequire(process.cwd() + "/deploy/check/")("yaml");
        const doc = YAML.parse(readFileSync(process.argv[1], "utf8"));
        const edges = Object.entries(doc.services).filter(([n]) => /^ott-edge-\d$/.test(n));
        if (edges.length !== 3) throw new Error(`expected three ott-edge replicas, found ${edges.length}`);
        const ids = new Set(edges.map(([, s]) => s.environment.OTT_EDGE_CLUSTER_NODE_ID));
        if (ids.size !== 3) throw new Error("every replica needs its own OTT_EDGE_CLUSTER_NODE_ID");
        const lb = doc.services["edge-lb"];
        if (!lb || !JSON.stringify(lb.ports).includes("443")) throw new Error("edge-lb must publish 443");
        for (const [k, v] of Object.entries(edges[0][1].environment)) if (k.startsWith("OTT_EDGE_") && !k.endsWith("_FILE")) console.log(`${k}=${v}`);
    ' "$work/cluster-compose.yaml" >"$work/cluster.env" || return 1
    openssl rand -base64 32 >"$work/cluster.key"
    printf 'OTT_EDGE_CLUSTER_REDIS=redis://ott-edge:x@redis:6379/0\nOTT_EDGE_CLUSTER_ENCRYPTION_KEY_FILE=%s\n' "$work/cluster.key" >>"$work/cluster.env"
    check_config_env "$work/cluster.env"
}
check "cluster compose: three replicas with their own node ids, HAProxy on 443, check-config of their environment" cluster_env
check "kubernetes-cluster: every manifest matches the Kubernetes API types (offline)" node deploy/check/validate-k8s.mjs deploy/kubernetes-cluster
k8s_cluster() {
    node --input-type=module -e '
        import { readFileSync } from "node:fs";
        import { createRequire } from "node:module";
        const YAML = createRequire(process.cwd() + "/deploy/check/")("yaml");
        const docs = (f) => YAML.parseAllDocuments(readFileSync(`deploy/kubernetes-cluster/${f}`, "utf8")).map((d) => d.toJS());
        const dep = docs("deployment.yaml")[0];
        if (dep.spec.replicas !== 3) throw new Error("the Deployment must have replicas: 3");
        const edge = dep.spec.template.spec.initContainers.find((c) => c.name === "ott-edge");
        const env = Object.fromEntries(edge.env.map((e) => [e.name, e.value ?? e.valueFrom]));
        if (env.OTT_EDGE_CLUSTER_REDIS_FILE !== "/run/secrets/ott-edge/redis-url") throw new Error("the Redis URL must come from the Secret file");
        if (!env.OTT_EDGE_CLUSTER_NODE_ID?.fieldRef) throw new Error("node_id must be the pod name");
        const vol = dep.spec.template.spec.volumes.find((v) => v.name === "ott-edge-cluster");
        if (vol?.secret?.secretName !== "ott-edge-cluster") throw new Error("the ott-edge-cluster Secret must be mounted");
        const acl = docs("secret.yaml").find((d) => d.metadata.name === "ott-redis-acl").stringData["users.acl"];
        if (!/user ott-edge on .*resetkeys ~ott-edge:\* resetchannels &ott-edge:\*/.test(acl)) throw new Error("the ott-edge Redis user must be limited to ~ott-edge:* and &ott-edge:*");
        process.stdout.write(docs("configmap.yaml")[0].data["config.yaml"]);
    ' >"$work/k8s-cluster-config.yaml" || return 1
    # the Secret's key file, as the pod sees it, is a local stand-in here
    openssl rand -base64 32 >"$work/k8s-cluster.key"
    sed -i "s#/run/secrets/ott-edge/cluster.key#$work/k8s-cluster.key#" "$work/k8s-cluster-config.yaml"
    OTT_EDGE_CLUSTER_REDIS=redis://ott-edge:x@ott-redis:6379/0 "$bin" check-config --config "$work/k8s-cluster-config.yaml"
}
check "kubernetes-cluster: replicas 3, Redis URL and key from a Secret, ACL user limited to ~ott-edge:*, check-config on the ConfigMap" k8s_cluster
mkdir -p "$work/k8s-cluster-bad"
cp deploy/kubernetes-cluster/*.yaml "$work/k8s-cluster-bad/"
sed -i 's/  replicas: 3/  replicaz: 3/' "$work/k8s-cluster-bad/deployment.yaml"
reject "kubernetes-cluster (self-test): misspelt 'replicaz' rejected by the schema check" "replicaz" \
    node deploy/check/validate-k8s.mjs "$work/k8s-cluster-bad"

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
