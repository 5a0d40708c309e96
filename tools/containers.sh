#!/usr/bin/env bash
# Builds and runs the real container images with Debian's podman (no Docker engine and no
# registry needed) and checks them from outside, as a user would meet them:
#   1. base: `debian:bookworm-slim` made with debootstrap (minbase, trimmed like the
#      official slim image), kept between runs (OTT_EDGE_CT_REBASE=1 makes it again);
#   2. builds (podman build --format docker, so HEALTHCHECK stays): ./Dockerfile, the
#      stand-ins for registry-only images (deploy/check/containers/standins.Dockerfile:
#      OTT -> the OTT-like test upstream on Debian's nodejs, Redis and PostgreSQL from
#      Debian's packages) and deploy/single-container/Dockerfile; each image's size, its
#      size on top of its base, and the build time (and how many steps came from the cache);
#   3. the image as shipped (uid 10001, --cap-drop=ALL --cap-add=NET_BIND_SERVICE,
#      --read-only, the state volume): binds 80/443, HTTPS + HTTP/2 to a test upstream,
#      `ott-edge healthcheck` inside, a certificate from a test ACME server (pebble),
#      kept across a restart through the volume (no second order), `podman stop` drains
#      an in-flight request and exits 0; also as the Kubernetes manifest runs it
#      (no_new_privs + net.ipv4.ip_unprivileged_port_start=0), and why that sysctl is needed;
#   4. docker-compose.yml with podman-compose (+ deploy/check/containers/compose.override.yml,
#      which only swaps in the stand-in images and the test CA): through the published
#      ports a page over h2, a WebSocket over wss:// (the `ws` client), X-Forwarded-For as
#      OTT sees it, each service's healthcheck, the state volume, `down` clean;
#   5. the single-container image: ott-edge as PID 1 supervising the (stand-in) OTT,
#      reaping orphans, SIGTERM -> drain -> exit 0, OTT dying -> the container exits non-zero.
# Everything runs in a network namespace this script makes (loopback, plus the podman
# bridges inside it): nothing listens on the host's interfaces.
#
# Usage: tools/containers.sh     (as root, or a user with sudo; CI runs it from tools/test.sh)
#   OTT_EDGE_CT_REBASE=1    make the base image again (debootstrap)
#   OTT_EDGE_CT_NO_CACHE=1  build without the layer cache (cold build times)
#   OTT_EDGE_CT_KEEP=1      leave the containers, volumes, namespace and work dir for inspection
# Ends with a PASS/FAIL line per check, the image figures, and "containers: N passed, M
# failed"; exit 1 on any failure. Exit 0 with "containers: SKIP ..." only when podman cannot
# run a container on this machine at all.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n --preserve-env=OTT_EDGE_CT_REBASE,OTT_EDGE_CT_NO_CACHE,OTT_EDGE_CT_KEEP "$0" "$@"; fi
    echo "containers: SKIP: rootful podman needs root (or password-less sudo)"
    exit 0
fi

t_start=$(date +%s)
# One run at a time on a machine: container, volume and project names are fixed.
mkdir -p /run/lock && exec 9>/run/lock/ott-edge-containers.lock
flock -w 900 9 || { echo "containers: another run holds /run/lock/ott-edge-containers.lock" >&2; exit 1; }

work=$(mktemp -d /tmp/ott-edge-containers.XXXXXX)
ns=ott-edge-ct-$$
P=oect # prefix of every container, volume and the compose project
base_img=docker.io/library/debian:bookworm-slim
edge_img=localhost/ott-edge-ci/ott-edge:latest
single_img=localhost/ott-edge-ci/single:latest
standin() { echo "localhost/ott-edge-ci/$1:latest"; }
dA=edge.ct.ott-edge.test   # the image as shipped
dB=ott.ct.ott-edge.test    # compose
dC=single.ct.ott-edge.test # single container
bg_pids=()

printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$work/containers.conf"
# runc: crun refuses this kernel's hybrid cgroup layout; no default ulimits: setrlimit
# NPROC is refused here (see shared/notes/containers.md).
export CONTAINERS_CONF=$work/containers.conf
inns() { nsenter --net="/run/netns/$ns" "$@"; }
# bg CMD...: start CMD in our namespace in the background; its pid goes to bg_pids and
# $bg_pid (nsenter execs CMD, so that is CMD's own pid).
bg() {
    nsenter --net="/run/netns/$ns" "$@" &
    bg_pid=$!
    bg_pids+=("$bg_pid")
}
# podman in our namespace. Without systemd podman cannot schedule periodic healthchecks
# and says so at level=error on every start/stop: drop that line (`podman healthcheck run`
# runs them on demand).
pm() { inns podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    if [ "${OTT_EDGE_CT_KEEP:-0}" = 1 ]; then
        echo "containers: kept work dir $work and namespace $ns (OTT_EDGE_CT_KEEP=1)" >&2
        return
    fi
    if [ -e "/run/netns/$ns" ]; then
        pm rm -f -v -t 0 $(pm ps -a -q --filter "name=^$P") >/dev/null 2>&1
        pm volume rm -f $(pm volume ls -q --filter "name=^$P") >/dev/null 2>&1
        pm network rm -f ${P}_default >/dev/null 2>&1
        # whatever still runs in our namespace was started by this script (aardvark-dns, ...)
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
summary=()
# the live lines carry the time since the start (where a slow machine spends it)
at() { echo "[$(($(date +%s) - t_start)) s]"; }
ok() { passed=$((passed + 1)); summary+=("PASS  $1"); echo "PASS  $1 $(at)"; }
bad() {
    failed=$((failed + 1)); summary+=("FAIL  $1"); echo "FAIL  $1 $(at)"
    [ -n "${2:-}" ] && [ -s "$2" ] && sed 's/^/      /' "$2" | tail -30
}
# check NAME CMD...: passes when CMD exits 0; CMD's output is shown on failure.
check() {
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name" "$work/out"; return 1; fi
}
now_ms() { date +%s%3N; }
since() { echo $(( ($(now_ms) - $1) )); } # ms since $1
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# ------------------------------------------------------------------------ what it needs
pkgs=(podman buildah runc conmon netavark aardvark-dns iptables uidmap slirp4netns debootstrap podman-compose)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "containers: installing ${missing[*]}" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
            "${missing[@]}" >"$work/apt.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        if [ -e /.dockerenv ] || [ -e /run/.containerenv ]; then
            echo "containers: SKIP: cannot install podman inside this container (apt-get exit $rc)"; exit 0
        fi
        cat "$work/apt.log" >&2; echo "containers: apt-get install failed" >&2; exit 1
    fi
fi
for t in curl openssl pebble pebble-challtestsrv node python3; do
    command -v $t >/dev/null || { echo "containers: $t is missing: run tools/deps.sh test first" >&2; exit 1; }
done
[ -d tests/node_modules/ws ] || (cd tests && npm ci --no-audit --no-fund --silent) || exit 1

# Can podman run a container here at all? A rootfs holding only /bin/true and its libraries.
probe=$work/probe
mkdir -p "$probe/bin"
cp /bin/true "$probe/bin/"
for lib in $(ldd /bin/true | awk '/\// {print ($3 ~ /^\//) ? $3 : $1}'); do
    mkdir -p "$probe$(dirname "$lib")" && cp -L "$lib" "$probe$lib"
done
if ! podman run --rm --network none --rootfs "$probe" /bin/true >"$work/probe.log" 2>&1; then
    echo "containers: SKIP: podman cannot run a container on this machine:"
    sed 's/^/  /' "$work/probe.log" | tail -5
    exit 0
fi
ip netns add "$ns" && inns ip link set lo up || { echo "containers: cannot make a network namespace" >&2; exit 1; }

# ---------------------------------------------------------------------------- base image
# The name the Dockerfiles ask for. No registry: Debian's own packages, through
# debootstrap, trimmed the way the official slim image is (no docs, man pages or
# translations, no apt lists) -- but without its apt "docker-clean" hook, so the
# Dockerfile has to clean up after apt itself.
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -m1 '/debian/*$')
mirror=${mirror:-$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -m1 '/debian/*$')}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -m1 '/debian-security/*$')
security=${security:-http://deb.debian.org/debian-security}
base_note="kept from an earlier run"
if [ "${OTT_EDGE_CT_REBASE:-0}" = 1 ] || ! podman image exists "$base_img"; then
    t0=$(now_ms)
    rootfs=$work/rootfs
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
        bad "base: debootstrap bookworm from $mirror" "$work/debootstrap.log"
        exit 1
    fi
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# like the official bookworm-slim image: no documentation, manuals or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/apt/* "$rootfs"/var/log/*.log
    rm -f "$rootfs/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" "$security" >"$rootfs/etc/apt/sources.list.d/debian.sources"
    if tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' \
        --change 'LABEL org.ott-edge.ci.base="debootstrap --variant=minbase bookworm, trimmed like bookworm-slim"' \
        - "$base_img" >"$work/import.log" 2>&1; then
        base_note="made with debootstrap in $(secs "$(since "$t0")")"
    else
        bad "base: import the debootstrap tree as $base_img" "$work/import.log"; exit 1
    fi
    rm -rf "$rootfs"
fi
base_size=$(podman image inspect -f '{{.Size}}' "$base_img")
ok "base: $base_img ($(mb "$base_size"), $base_note)"

# -------------------------------------------------------------------------------- builds
nocache=(); [ "${OTT_EDGE_CT_NO_CACHE:-0}" = 1 ] && nocache=(--no-cache)
# build NAME LOG ARGS...: podman build; "rc ms steps cached" go to $work/fig-NAME.
build() {
    local name=$1 log=$2 t0 rc; shift 2
    t0=$(now_ms)
    ${nice_build:-} podman build --network host --format docker "${nocache[@]}" "$@" >"$log" 2>&1; rc=$?
    echo "$rc $(since "$t0") $(grep 'STEP [0-9]*/[0-9]*: ' "$log" | grep -vc 'STEP [0-9/]*: FROM ') $(grep -c -- '--> Using cache' "$log")" >"$work/fig-$name"
    return $rc
}
fig() { cut -d' ' -f"$2" "$work/fig-$1" 2>/dev/null; } # fig NAME 1=rc 2=ms 3=steps 4=cached
built_in() { echo "$(secs "$(fig "$1" 2)") ($(fig "$1" 4) of $(fig "$1" 3) steps from the layer cache)"; }
img_size() { podman image inspect -f '{{.Size}}' "$1" 2>/dev/null || echo 0; }

ctx=$work/standin-ctx
mkdir -p "$ctx"
cp deploy/check/containers/{standins.Dockerfile,wait_for_db.sh,yarn,postgres-entrypoint.sh} tests/upstream/ott-upstream.mjs "$ctx/"
build_standins() {
    local t
    for t in ott postgres redis; do
        nice_build="nice -n 10" build "standin-$t" "$work/build-standin-$t.log" --target "$t" -t "$(standin $t)" \
            -f "$ctx/standins.Dockerfile" "$ctx" || return 1
    done
}
# Order, for the wall clock (everything here is CPU-bound on small machines): the ott-edge
# image is on the critical path, its checks start as soon as it is built. Its runtime-base
# stage is built alongside by a second `podman build --target` (buildah builds a
# Dockerfile's stages one after the other; the full build then finds those layers in the
# cache) -- not `--jobs 2`: buildah 1.28 then ran the runtime stage's COPY --from=build
# before the build stage had finished. The stand-ins build at the same time at a lower CPU
# priority, and the single-container image (it reuses the compile: same build stage) as
# soon as both are there, while the checks run.
build runtime-base "$work/build-runtime-base.log" --target runtime-base -f Dockerfile . &
bg_pids+=($!)
build edge "$work/build-edge.log" -t "$edge_img" -f Dockerfile . &
edge_job=$!
build_standins &
standin_job=$!
single_build() { # once the image (its build stage) and the OTT stand-in (its base) are built
    until [ -e "$work/fig-edge" ] && [ -e "$work/fig-standin-ott" ]; do sleep 1; done
    [ "$(fig edge 1)" = 0 ] && [ "$(fig standin-ott 1)" = 0 ] || return 1
    build single "$work/build-single.log" --build-arg OTT_IMAGE="$(standin ott)" -t "$single_img" \
        -f deploy/single-container/Dockerfile .
}
single_build &
single_job=$!
bg_pids+=("$edge_job" "$standin_job" "$single_job")
wait "$edge_job"; edge_rc=$?
if [ $edge_rc -eq 0 ]; then
    ok "build: ./Dockerfile -> $edge_img in $(built_in edge)"
else
    bad "build: ./Dockerfile" "$work/build-edge.log"
fi

# --------------------------------------------------------------------- test CA (pebble)
# pebble validates the domains at 127.0.0.1:80 / :443 of our namespace (its DNS answers
# 127.0.0.1), where the container under test listens or its published ports are.
# It listens on all addresses of the namespace so that containers on a podman bridge reach
# it as host.containers.internal (the bridge's gateway).
peb=$work/pebble
mkdir -p "$peb"
start_pebble() {
    (cd "$peb" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj '/CN=ott-edge containers test CA' \
            -keyout ca.key -out ca.pem &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout srv.key -out srv.csr &&
        printf 'subjectAltName=DNS:localhost,DNS:host.containers.internal,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out srv.pem) \
        >"$peb/openssl.log" 2>&1 || return 1
    cat >"$peb/pebble.json" <<EOF
{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$peb/srv.pem", "privateKey": "$peb/srv.key", "httpPort": 80, "tlsPort": 443,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
    bg pebble-challtestsrv -dns01 127.0.0.1:8053 -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:8055 \
        -defaultIPv6 '' >"$peb/challtestsrv.log" 2>&1
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
        bg pebble -config "$peb/pebble.json" -dnsserver 127.0.0.1:8053 >"$peb/pebble.log" 2>&1
    local i
    for i in $(seq 100); do
        inns curl -fsS --cacert "$peb/ca.pem" https://127.0.0.1:14000/dir >/dev/null 2>&1 && break
        sleep 0.1
    done
    inns curl -fsS --cacert "$peb/ca.pem" https://127.0.0.1:15000/roots/0 >"$peb/root.pem" || { cat "$peb/pebble.log"; return 1; }
}
orders() { grep -c 'POST /order-plz' "$peb/pebble.log"; }
root_ca=$peb/root.pem # the root pebble issues under: what a browser would trust

# https NAME ADDR PORT PATH [curl args...]: GET verifying the certificate against pebble's
# root; prints "HTTP_VERSION STATUS", the body goes to $work/body.
https() {
    local name=$1 addr=$2 port=$3 path=$4; shift 4
    inns curl -sS --max-time 15 --cacert "$root_ca" --resolve "$name:$port:$addr" -o "$work/body" \
        -w '%{http_version} %{http_code}\n' "$@" "https://$name:$port$path"
}
# wait_cert NAME ADDR PORT SECONDS: until the served certificate verifies against pebble's root.
wait_cert() {
    local end=$(($(date +%s) + $4))
    until https "$1" "$2" "$3" /api/status >/dev/null 2>&1; do
        [ "$(date +%s)" -lt $end ] || { echo "no certificate from pebble for $1 within $4 s"; https "$1" "$2" "$3" /api/status; return 1; }
        sleep 0.2
    done
}
serial() { inns openssl s_client -connect "$2:$3" -servername "$1" </dev/null 2>/dev/null | openssl x509 -noout -serial; }
state_files() { # VOLUME: "name uid mode" per file
    local mp; mp=$(pm volume inspect -f '{{.Mountpoint}}' "$1") || return 1
    (cd "$mp" && find . -maxdepth 1 -type f -printf '%f %U %m\n' | sort)
}
# needs_state VOLUME: account key and certificate pair stored, owned by 10001, keys 0600.
needs_state() {
    local f; f=$(state_files "$1") || return 1
    echo "$f"
    echo "$f" | grep -qx 'account.key 10001 600' && echo "$f" | grep -qx 'cert.key 10001 600' && echo "$f" | grep -q '^cert.pem 10001 '
}

# --------------------------------------------------------------- the image as shipped
start_upstream() {
    bg node tests/upstream/ott-upstream.mjs --port 8080 --host 127.0.0.1 >"$work/upstream.log" 2>&1
    upstream_pid=$bg_pid
    local i
    for i in $(seq 50); do inns curl -fsS -o /dev/null http://127.0.0.1:8080/api/status 2>/dev/null && return 0; sleep 0.1; done
    cat "$work/upstream.log"; return 1
}
# `--cap-drop=ALL --cap-add=NET_BIND_SERVICE` as Docker and Kubernetes (containerd, CRI-O)
# mean it: NET_BIND_SERVICE stays in the bounding set and the binary's file capability
# raises it. podman's --cap-add would also make it an *ambient* capability of the non-root
# user, so the file capability would never be exercised: drop every other default
# capability by name instead (as_shipped checks the result: bounding 0x400, ambient 0).
capdrop=--cap-drop=CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT,AUDIT_WRITE,MKNOD,NET_RAW
run_edge() { # the way deploy/kubernetes runs it: non-root, no capability but NET_BIND_SERVICE, read-only
    pm run -d --name $P-edge --network host $capdrop --read-only \
        -v $P-state:/var/lib/ott-edge -v "$peb/ca.pem:/etc/ott-edge/test-acme-ca.pem:ro" \
        -e OTT_EDGE_DOMAINS=$dA -e OTT_EDGE_ACME_EMAIL=ci@ott-edge.test \
        -e OTT_EDGE_ACME_DIRECTORY=https://127.0.0.1:14000/dir -e OTT_EDGE_ACME_CA_FILE=/etc/ott-edge/test-acme-ca.pem \
        -e OTT_EDGE_UPSTREAM=http://127.0.0.1:8080 "$edge_img"
}
status_of() { pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1"; }
image_config() {
    local j; j=$(podman image inspect "$edge_img") || return 1
    /usr/bin/python3 - "$j" <<'EOF'
import json, sys
i = json.loads(sys.argv[1])[0]
c, problems = i["Config"], []
def need(ok, what):
    if not ok: problems.append(what)
need(c.get("User") == "10001:10001", f"USER 10001:10001 (is {c.get('User')})")
hc = i.get("Healthcheck") or c.get("Healthcheck") or {}
need(hc.get("Test", [None, None])[1:3] == ["/usr/local/bin/ott-edge", "healthcheck"], f"HEALTHCHECK ott-edge healthcheck (is {hc})")
need("/var/lib/ott-edge" in (c.get("Volumes") or {}), "VOLUME /var/lib/ott-edge")
need(set(c.get("ExposedPorts") or {}) >= {"80/tcp", "443/tcp", "9901/tcp"}, f"EXPOSE 80 443 9901 (is {list(c.get('ExposedPorts') or {})})")
need(c.get("StopSignal") in ("SIGTERM", "15"), f"STOPSIGNAL SIGTERM (is {c.get('StopSignal')})")
print(f"user {c.get('User')}, healthcheck {hc.get('Test')}, volumes {list(c.get('Volumes') or {})}, stop signal {c.get('StopSignal')}")
for p in problems: print("missing:", p)
sys.exit(1 if problems else 0)
EOF
}
size_budget() {
    local on_top=$((edge_size - base_size))
    echo "$(mb "$edge_size") = $(mb "$base_size") base + $(mb $on_top)"
    [ $on_top -le 30000000 ]
}
proc_status() { # CONTAINER: uid, capabilities and no_new_privs of its PID 1
    pm exec "$1" sh -c 'grep -E "^(Uid|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/1/status' | tr -s '\t ' ' '
}
as_shipped() {
    local st; st=$(proc_status $P-edge) || return 1
    echo "$st"; echo "read-only root: $(pm inspect -f '{{.HostConfig.ReadonlyRootfs}}' $P-edge)"
    inns ss -ltnp | grep -E ':(80|443|9901) ' | grep ott-edge
    echo "$st" | grep -q '^Uid: 10001 10001 10001 10001' &&
        echo "$st" | grep -q '^CapEff: 0000000000000400' && echo "$st" | grep -q '^CapBnd: 0000000000000400' &&
        echo "$st" | grep -q '^CapAmb: 0000000000000000' &&
        [ "$(pm inspect -f '{{.HostConfig.ReadonlyRootfs}}' $P-edge)" = true ] &&
        inns ss -ltnp | grep -E ':443 ' | grep -q ott-edge && inns ss -ltnp | grep -E ':80 ' | grep -q ott-edge &&
        ! pm exec $P-edge sh -c 'echo x >/etc/ott-edge/probe' 2>/dev/null
}
h2_page() { # NAME ADDR
    local r; r=$(https "$1" "$2" 443 / --http2) || return 1
    echo "$r: $(head -c 80 "$work/body")"
    [ "$r" = "2 200" ] && grep -q 'ott-upstream' "$work/body"
}
redirect() { # NAME ADDR
    local r; r=$(inns curl -sS --max-time 10 --resolve "$1:80:$2" -o /dev/null -w '%{http_code} %{redirect_url}' "http://$1/some/path?q=1") || return 1
    echo "$r"; [ "$r" = "308 https://$1/some/path?q=1" ]
}
healthchecks() { # CONTAINER: ott-edge healthcheck (+ --ready) inside, and the image's HEALTHCHECK
    pm exec "$1" /usr/local/bin/ott-edge healthcheck && pm exec "$1" /usr/local/bin/ott-edge healthcheck --ready &&
        pm healthcheck run "$1" && echo "healthcheck, healthcheck --ready, podman healthcheck run: all 0"
}
# stop_drains CONTAINER NAME TIMEOUT: a slow request in flight when `podman stop` sends
# SIGTERM completes with 200, the container exits 0 (not SIGKILLed) before TIMEOUT.
stop_drains() {
    local c=$1 name=$2 to=$3 t0 ms r st
    https "$name" 127.0.0.1 443 '/slow?ms=7000' >"$work/slow.code" 2>&1 &
    local curl_pid=$!
    for _ in $(seq 50); do
        inns curl -fsS "http://127.0.0.1:8080/count?path=/slow" 2>/dev/null | grep -q '"count":[1-9]' && break
        sleep 0.1
    done
    t0=$(now_ms)
    pm stop -t "$to" "$c" >/dev/null || return 1
    ms=$(since "$t0")
    wait $curl_pid; r=$(cat "$work/slow.code")
    st=$(status_of "$c")
    echo "podman stop -t $to took $(secs "$ms"); in-flight /slow?ms=7000 answered '$r'; container: $st"
    pm logs "$c" 2>&1 | grep -E 'draining|drain|exit' | tail -4
    [ "$st" = "exited 0" ] && [ "${r#* }" = 200 ] && [ "$ms" -lt $((to * 1000)) ]
}
acme_cert() {
    wait_cert $dA 127.0.0.1 443 30 || return 1
    serial $dA 127.0.0.1 443 >"$work/serial-A"
    echo "$(cat "$work/serial-A"), pebble orders: $(orders)"
    pm logs $P-edge 2>&1 | grep acme_certificate_installed
    [ "$(orders)" = 1 ]
}
restart_keeps_cert() {
    local before after o0 o1
    before=$(cat "$work/serial-A"); o0=$(orders)
    pm start $P-edge >/dev/null || return 1
    wait_cert $dA 127.0.0.1 443 20 || return 1
    after=$(serial $dA 127.0.0.1 443); o1=$(orders)
    echo "before: $before, after: $after; pebble orders: $o0 -> $o1"
    pm logs $P-edge 2>&1 | grep -E 'acme_stored_certificate' | tail -1
    [ -n "$before" ] && [ "$before" = "$after" ] && [ "$o0" = "$o1" ]
}
final_stop() {
    local t0 ms st
    t0=$(now_ms); pm stop -t 35 $P-edge >/dev/null || return 1; ms=$(since "$t0")
    st=$(status_of $P-edge); echo "podman stop -t 35 took $(secs "$ms"); container: $st"
    [ "$st" = "exited 0" ]
}
# As deploy/kubernetes runs it: allowPrivilegeEscalation: false (no_new_privs: the kernel
# then ignores the binary's file capability), so the pod sets
# net.ipv4.ip_unprivileged_port_start=0. On a podman bridge with the ports published.
k8s_run() { # NAME [extra podman args]
    local name=$1; shift
    pm run -d --name "$name" --network bridge -p 127.0.0.1:18443:443 -p 127.0.0.1:18080:80 \
        --security-opt no-new-privileges $capdrop --read-only \
        -v "$name-state:/var/lib/ott-edge" -e OTT_EDGE_DOMAINS=k8s.ct.ott-edge.test \
        -e OTT_EDGE_ACME_DIRECTORY=https://127.0.0.1:9/dir "$@" "$edge_img"
}
k8s_style() {
    k8s_run $P-k8s --sysctl net.ipv4.ip_unprivileged_port_start=0 >/dev/null || return 1
    local i r=""
    for i in $(seq 50); do
        r=$(inns curl -sk --max-time 5 -o /dev/null -w '%{http_version} %{http_code}' --http2 https://127.0.0.1:18443/ 2>/dev/null) && [ "${r#2 }" != "$r" ] && break
        sleep 0.1
    done
    local st; st=$(proc_status $P-k8s); echo "$st"; echo "HTTPS on the published 443: $r"
    echo "$st" | grep -q '^NoNewPrivs: 1' && echo "$st" | grep -q '^CapEff: 0000000000000000' &&
        [ "${r#2 }" != "$r" ] && pm exec $P-k8s /usr/local/bin/ott-edge healthcheck
}
k8s_without_sysctl() {
    k8s_run $P-k8s-nosysctl >/dev/null || return 1
    local st
    for _ in $(seq 50); do st=$(status_of $P-k8s-nosysctl); [ "${st%% *}" = exited ] && break; sleep 0.1; done
    echo "container: $st"; pm logs $P-k8s-nosysctl 2>&1 | tail -3
    [ "${st%% *}" = exited ] && [ "${st#* }" != 0 ] && pm logs $P-k8s-nosysctl 2>&1 | grep -qi 'permission denied\|EACCES'
}

if [ $edge_rc -eq 0 ]; then
    edge_size=$(img_size "$edge_img")
    check "image: USER 10001, HEALTHCHECK (kept by --format docker), VOLUME, EXPOSE, STOPSIGNAL" image_config
    check "image: at most 30 MB on top of debian:bookworm-slim" size_budget
    if check "test CA: pebble + challtestsrv in the test namespace" start_pebble &&
        check "test upstream: tests/upstream/ott-upstream.mjs on 127.0.0.1:8080" start_upstream; then
        pm volume rm -f $P-state >/dev/null 2>&1
        if check "run as shipped: uid 10001, NET_BIND_SERVICE the only capability (--cap-drop=ALL --cap-add=NET_BIND_SERVICE as Docker means it), --read-only, state volume" run_edge; then
            check "ACME: a certificate for $dA from pebble (validated on 80/443 of the container)" acme_cert
            check "as shipped: uid 10001 binds 80/443 with only CAP_NET_BIND_SERVICE (file capability); root filesystem read-only" as_shipped
            check "HTTPS + HTTP/2 to the upstream, certificate verified against pebble's root" h2_page $dA 127.0.0.1
            check "HTTP on 80: 308 to https://" redirect $dA 127.0.0.1
            check "ott-edge healthcheck inside the container (and the image's HEALTHCHECK)" healthchecks $P-edge
            check "state volume: account key, certificate and key, owned by 10001, keys 0600" needs_state $P-state
            check "podman stop: SIGTERM drains an in-flight request, exit 0 within the stop timeout" stop_drains $P-edge $dA 35
            check "restart: the certificate comes back from the volume, no second order at pebble" restart_keeps_cert
            check "podman stop again: exit 0" final_stop
        fi
        check "as Kubernetes runs it: no_new_privs + ip_unprivileged_port_start=0 binds 80/443 (bridge, published ports)" k8s_style
        pm rm -f -v -t 0 $P-k8s >/dev/null 2>&1
        check "  ... and without that sysctl no_new_privs makes the bind fail (why the manifests set it)" k8s_without_sysctl
        pm rm -f -v -t 0 $P-k8s-nosysctl >/dev/null 2>&1
        kill "$upstream_pid" 2>/dev/null
    fi
fi

wait "$standin_job"; standin_rc=$?
if [ $standin_rc -eq 0 ]; then
    ok "build: stand-ins ott / postgres / redis in $(built_in standin-ott) / $(built_in standin-postgres) / $(built_in standin-redis)"
else
    bad "build: stand-ins (standins.Dockerfile)" "$(ls -t "$work"/build-standin-*.log | head -1)"
fi

# ---------------------------------------------------------------------- docker-compose.yml
# podman-compose reads .env from the compose file's directory (a developer's .env would
# override these values): run it on a copy of docker-compose.yml in the work dir.
cdir=$work/compose
compose() {
    (cd "$cdir" && OTT_EDGE_DOMAINS=$dB OTT_EDGE_ACME_EMAIL=ci@ott-edge.test OTT_HOSTNAME=$dB \
        OTT_EDGE_ACME_DIRECTORY=https://host.containers.internal:14000/dir OTT_EDGE_CI_ACME_CA="$peb/ca.pem" \
        SESSION_SECRET=ci-session-secret-$$ POSTGRES_PASSWORD=ci-password-$$ \
        inns podman-compose -p $P -f docker-compose.yml -f compose.override.yml "$@")
}
cname() { echo "${P}_$1_1"; } # podman-compose 1.0.3 names containers PROJECT_SERVICE_N
compose_up() {
    mkdir -p "$cdir" && cp docker-compose.yml deploy/check/containers/compose.override.yml "$cdir/" || return 1
    compose up -d >"$work/compose-up.log" 2>&1 || { tail -20 "$work/compose-up.log"; return 1; }
    local s want="$(cname ott-edge) $(cname ott) $(cname postgres) $(cname redis)" n
    for n in $want; do
        s=$(status_of "$n") || return 1
        echo "$n: $s"
        [ "${s%% *}" = running ] || { pm logs "$n" 2>&1 | tail -5; return 1; }
    done
}
# ready CONTAINER SECONDS: `ott-edge healthcheck --ready` inside (a certificate from ACME
# and OTT answering), the way deploy/README.md tells a user to check.
ready() {
    local end=$(($(date +%s) + $2))
    until pm exec "$1" /usr/local/bin/ott-edge healthcheck --ready >"$work/ready.out" 2>&1; do
        [ "$(date +%s)" -lt $end ] || {
            cat "$work/ready.out"; pm logs "$1" 2>&1 | tail -5
            pm ps -a --format '{{.Names}} {{.Networks}} {{.Status}} restarts={{.Restarts}}'
            case "$1" in "$(cname ott-edge)") pm exec "$1" getent ahosts ott; pm logs --tail 5 "$(cname ott)" ;; esac
            return 1
        }
        sleep 0.3
    done
    echo "$1: healthcheck --ready: 0"
}
xff() { # a client at 203.0.113.7 (an address on the namespace's loopback), sending a forged header
    inns ip addr add 203.0.113.7/32 dev lo 2>/dev/null
    local r edge_ip
    r=$(https $dB 203.0.113.7 443 /debug/headers -H 'X-Forwarded-For: 198.51.100.66') || return 1
    edge_ip=$(pm inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cname ott-edge)")
    /usr/bin/python3 - "$work/body" "$edge_ip" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
h = {}
for k, v in d["headers"]:
    h.setdefault(k.lower(), []).append(v)
xff, proto = h.get("x-forwarded-for"), h.get("x-forwarded-proto")
peer = d.get("remoteAddress", "").removeprefix("::ffff:")
print(f"OTT sees: X-Forwarded-For {xff}, X-Forwarded-Proto {proto}, Host {h.get('host')}, peer {peer} (ott-edge's container: {sys.argv[2]})")
print("with TRUST_PROXY=1 OTT takes the last X-Forwarded-For entry as the client:", (xff or ["?"])[-1].split(",")[-1].strip())
sys.exit(0 if xff == ["203.0.113.7"] and proto == ["https"] and peer == sys.argv[2] else 1)
EOF
}
# connect_from CONTAINER HOST PORT: a TCP connection from node inside CONTAINER, by name.
connect_from() {
    pm exec "$1" node -e '
        const t0 = Date.now(), [h, p] = process.argv.slice(1);
        const s = require("net").connect(+p, h, () => { console.log(`${h}:${p} connected to ${s.remoteAddress} in ${Date.now() - t0} ms`); process.exit(0); });
        s.on("error", (e) => { console.log(`${h}:${p}: ${e.message}`); process.exit(1); });
        setTimeout(() => { console.log(`${h}:${p}: no connection within 15 s`); process.exit(1); }, 15000);' "$2" "$3"
}
service_names() { # from the ott container, by service name, as OTT's REDIS_HOST/POSTGRES_HOST say
    local hp out
    for hp in redis:6379 postgres:5432; do
        if ! out=$(connect_from "$(cname ott)" "${hp%:*}" "${hp#*:}"); then
            # seen once on a heavily loaded machine: say what name resolution did, try once more
            echo "$out"; pm exec "$(cname ott)" sh -c "time getent ahosts ${hp%:*}" 2>&1
            pm inspect -f '{{.Name}}: {{.State.Status}}, restarts {{.RestartCount}}' "$(cname ott)" "$(cname "${hp%:*}")"
            echo "note: compose: ${hp%:*} needed a second try from ott ($out)" >>"$work/notes"
            out=$(connect_from "$(cname ott)" "${hp%:*}" "${hp#*:}") || { echo "$out"; return 1; }
        fi
        echo "$out"
    done
}
compose_health() {
    local n
    for n in ott-edge redis postgres; do
        pm healthcheck run "$(cname $n)" >/dev/null || { echo "$n: unhealthy"; pm inspect -f '{{json .State.Health}}' "$(cname $n)"; return 1; }
        echo "$n: healthy"
    done
}
compose_down() {
    local t0 ms st left vols
    t0=$(now_ms); compose stop -t 35 >"$work/compose-stop.log" 2>&1 || { tail "$work/compose-stop.log"; return 1; }
    ms=$(since "$t0")
    st=$(status_of "$(cname ott-edge)")
    echo "podman-compose stop -t 35: $(secs "$ms"); ott-edge: $st"
    compose down >"$work/compose-down.log" 2>&1 || { tail "$work/compose-down.log"; return 1; }
    left=$(pm ps -a -q --filter label=io.podman.compose.project=$P | wc -l)
    vols=$(pm volume ls -q --filter label=io.podman.compose.project=$P | tr '\n' ' ')
    echo "podman-compose down: $left containers left; volumes kept: $vols"
    [ "$st" = "exited 0" ] && [ "$left" = 0 ] && echo "$vols" | grep -q "${P}_ott-edge-state"
}
if [ $edge_rc -eq 0 ] && [ $standin_rc -eq 0 ] && [ -s "$root_ca" ]; then
    if check "compose: podman-compose up -d (docker-compose.yml + stand-in override): 4 services running" compose_up; then
        check "compose: certificate from pebble, validated through the published 80/443" wait_cert $dB 127.0.0.1 443 40
        # OTT (stand-in) starts once PostgreSQL accepts connections: its first start takes a while
        check "compose: ready (healthcheck --ready inside ott-edge: certificate + OTT answering)" ready "$(cname ott-edge)" 90
        check "compose: a page over HTTP/2 through the published 443 (ott-edge -> ott:8080 by service name)" h2_page $dB 127.0.0.1
        check "compose: HTTP on the published 80: 308 to https://" redirect $dB 127.0.0.1
        check "compose: WebSocket through wss:// (ws client: hello + echo)" inns node deploy/check/containers/ws-check.mjs $dB 127.0.0.1 443 "$root_ca"
        check "compose: X-Forwarded-For as OTT sees it: the client's address only (forged header dropped), proto https" xff
        check "compose: OTT reaches redis and postgres by service name" service_names
        check "compose: healthchecks of ott-edge (image), redis, postgres (compose file)" compose_health
        check "compose: state volume ${P}_ott-edge-state holds the account key and certificate" needs_state ${P}_ott-edge-state
        check "compose: stop -t 35 drains (ott-edge exit 0), down removes every container, keeps the volumes" compose_down
    fi
    compose down -v >/dev/null 2>&1
    pm network rm -f ${P}_default >/dev/null 2>&1
fi

# ------------------------------------------------------------------------ single container
wait "$single_job"; single_rc=$?
if [ $single_rc -eq 0 ]; then ok "build: deploy/single-container/Dockerfile (on the OTT stand-in) in $(built_in single)"; else
    [ -e "$work/build-single.log" ] && bad "build: deploy/single-container/Dockerfile" "$work/build-single.log"
fi
run_single() {
    # OTT's wait_for_db.sh (stand-in) waits for PostgreSQL: a TCP listener is enough here.
    bg node -e 'require("net").createServer((s) => s.destroy()).listen(15432, "127.0.0.1")'
    pm volume rm -f $P-single-state >/dev/null 2>&1
    pm run -d --name $P-single --network host -v $P-single-state:/var/lib/ott-edge \
        -v "$peb/ca.pem:/etc/ott-edge/test-acme-ca.pem:ro" \
        -e OTT_EDGE_DOMAINS=$dC -e OTT_EDGE_ACME_EMAIL=ci@ott-edge.test \
        -e OTT_EDGE_ACME_DIRECTORY=https://127.0.0.1:14000/dir -e OTT_EDGE_ACME_CA_FILE=/etc/ott-edge/test-acme-ca.pem \
        -e OTT_HOSTNAME=$dC -e SESSION_SECRET=ci -e POSTGRES_HOST=127.0.0.1 -e POSTGRES_PORT=15432 \
        -e OTT_EDGE_SHUTDOWN_DELAY=1s "$single_img" # (the 5 s default delay is checked above)
}
# ott_pid CONTAINER: the pid (in the container) of OTT's node process, a child of PID 1.
ott_pid() {
    pm exec "$1" sh -c 'for s in /proc/[0-9]*/status; do
        n=$(sed -n "s/^Name:\t//p" "$s"); pp=$(sed -n "s/^PPid:\t//p" "$s")
        [ "$n" = node ] && [ "$pp" = 1 ] && { basename "$(dirname "$s")"; exit 0; }; done; exit 1'
}
pid1() {
    local c1 p
    [ "$(status_of $P-single)" = "running 0" ] || { status_of $P-single; pm logs $P-single 2>&1 | tail -12; return 1; }
    c1=$(pm exec $P-single cat /proc/1/cmdline | tr '\0' ' ') || return 1
    p=$(ott_pid $P-single) || { echo "PID 1: $c1; no node child of PID 1"; pm exec $P-single ps 2>/dev/null; return 1; }
    echo "PID 1: $c1; OTT: pid $p: $(pm exec $P-single cat /proc/$p/cmdline | tr '\0' ' '), parent 1"
    case "$c1" in /usr/local/bin/ott-edge\ --\ *) ;; *) return 1 ;; esac
}
single_ready() {
    wait_cert $dC 127.0.0.1 443 30 && ready $P-single 30 && pm healthcheck run $P-single
}
reaps() { # an orphan re-parented to PID 1 must not stay a zombie
    pm exec $P-single sh -c 'sleep 0.3 & exit 0' || return 1
    sleep 1.5
    local z; z=$(pm exec $P-single sh -c 'grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null')
    echo "zombies: ${z:-none}"; [ -z "$z" ]
}
single_stop() {
    local t0 ms st
    t0=$(now_ms); pm stop -t 60 $P-single >/dev/null || return 1; ms=$(since "$t0")
    st=$(status_of $P-single)
    echo "podman stop -t 60: $(secs "$ms"); container: $st"
    pm logs $P-single 2>&1 | grep -E 'signal|draining|stopped' | tail -4
    [ "$st" = "exited 0" ] && pm logs $P-single 2>&1 | grep -q 'stopped exit_code=0'
}
ott_dies() {
    pm start $P-single >/dev/null || return 1
    wait_cert $dC 127.0.0.1 443 20 && ready $P-single 30 || return 1
    local p t0 ms st
    p=$(ott_pid $P-single) || { echo "no node child of PID 1"; return 1; }
    t0=$(now_ms)
    pm exec $P-single sh -c "kill -KILL $p" || return 1
    st=$(pm wait $P-single) || return 1; ms=$(since "$t0")
    echo "OTT (pid $p) SIGKILLed: the container exited on its own after $(secs "$ms") with status $st"
    pm logs $P-single 2>&1 | grep -E 'child_exited' | tail -2
    [ "$st" != 0 ] && pm logs $P-single 2>&1 | grep -q child_exited
}
if [ $single_rc -eq 0 ] && [ -s "$root_ca" ]; then
    if check "single container: starts (ott-edge -- OTT's own CMD: wait_for_db.sh -- yarn run start)" run_single; then
        check "single container: certificate from pebble, healthcheck --ready (covers OTT)" single_ready
        check "single container: ott-edge is PID 1, OTT (node) its child" pid1
        check "single container: HTTPS + HTTP/2 through to OTT" h2_page $dC 127.0.0.1
        check "single container: an orphan re-parented to PID 1 is reaped" reaps
        check "single container: podman stop -> drain, OTT stopped, exit 0" single_stop
        check "single container: OTT killed -> ott-edge exits non-zero on its own (restart policy applies)" ott_dies
    fi
fi

# --------------------------------------------------------------------------------- report
# What each image is made of: the packages the runtime stage added to the base (bytes of
# the files actually on disk: docs and man pages are not installed), and the layers.
composition() {
    pm run --rm --network none --entrypoint dpkg-query "$base_img" -W -f '${Package}\n' | sort >"$work/pk-base"
    pm run --rm --network none --entrypoint dpkg-query "$edge_img" -W -f '${Package}\n' | sort >"$work/pk-edge"
    pm run --rm --network none --entrypoint sh "$edge_img" -c '
        for p in "$@"; do n=0
            for f in $(dpkg -L "$p"); do [ -f "$f" ] && [ ! -L "$f" ] && n=$((n + $(stat -c %s "$f"))); done
            echo "$n $p"; done' sh $(comm -13 "$work/pk-base" "$work/pk-edge") | sort -rn
}
echo
echo "================================================================ images (podman, uncompressed)"
if [ $edge_rc -eq 0 ]; then
    gz=$(podman save --format docker-archive "$edge_img" 2>/dev/null | gzip -6 | wc -c)
    printf '%-34s %9s  %s\n' "$edge_img" "$(mb "$edge_size")" \
        "= $(mb "$base_size") debian:bookworm-slim + $(mb $((edge_size - base_size))); gzip'd $(mb "$gz"); built in $(built_in edge)"
    composition >"$work/composition"
    pk_total=$(awk '{s += $1} END {print s}' "$work/composition")
    echo "  on top of the base: $(wc -l <"$work/composition") Debian packages, $(mb "$pk_total") of files:"
    awk '{printf "%s %.2f MB,", $2, $1 / 1e6} NR == 12 {exit}' "$work/composition" | sed 's/,$//; s/,/, /g; s/^/    /'; echo
    echo "  layers:"
    podman history --format '{{.Size}}\t{{.CreatedBy}}' "$edge_img" | awk -F'\t' '$1 != "0B" && $1 != "0 B"' |
        cut -c1-110 | sed 's/^/    /' | head -6
fi
if [ $single_rc -eq 0 ]; then
    s_size=$(img_size "$single_img"); o_size=$(img_size "$(standin ott)")
    printf '%-34s %9s  %s\n' "$single_img" "$(mb "$s_size")" \
        "= $(mb "$o_size") OTT stand-in + $(mb $((s_size - o_size))) (ott-edge bundled with its libraries); built in $(built_in single)"
fi
if [ $standin_rc -eq 0 ]; then
    printf '%-34s %9s  %s\n' "$(standin ott) (+ redis, postgres)" "$(mb "$(img_size "$(standin ott)")")" \
        "stand-ins, one layer of Debian packages; built in $(secs $(( $(fig standin-ott 2) + $(fig standin-postgres 2) + $(fig standin-redis 2) )))"
fi
echo "================================================================ checks"
printf '%s\n' "${summary[@]}"
[ -s "$work/notes" ] && cat "$work/notes"
echo "containers: $passed passed, $failed failed ($(secs $(( $(date +%s) * 1000 - t_start * 1000 ))))"
[ "$failed" -eq 0 ]
