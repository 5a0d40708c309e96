# ott-edge container image: HTTPS (TLS termination + ACME certificates) in front of OpenTogetherTube.
#
#   docker build -t ott-edge .
#   docker run -d -p 80:80 -p 443:443 -v ott-edge-state:/var/lib/ott-edge \
#     -e OTT_EDGE_DOMAINS=ott.example.com -e OTT_EDGE_ACME_EMAIL=you@example.com \
#     -e OTT_EDGE_UPSTREAM=http://ott:8080 ott-edge
#
# See deploy/README.md for compose, Kubernetes, the single-container entrypoint and systemd.

# ---------------------------------------------------------------------------- build stage
# The build dependencies come from tools/deps.sh, as everywhere else; CI builds and runs this
# image (tools/containers.sh). deps.sh is copied alone first, so that editing another file
# does not redo the package install; the build then gets all of tools/ and tests/ (CMake
# reads files there, e.g. tools/embed.cmake) but compiles only the ott-edge target: CI
# compiles and runs the tests elsewhere.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY tools/deps.sh tools/deps.sh
RUN tools/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY tools/ tools/
COPY CMakeLists.txt ./
COPY cmd/ cmd/
COPY pkg/ pkg/
COPY tests/ tests/
# deploy/single-container/Dockerfile repeats these build-stage lines word for word, so a
# build of both images compiles once (the layers are shared).
RUN cmake -S . -B build -DOE_WERROR=ON >/dev/null && cmake --build build --target ott-edge -j"$(nproc)" \
    && mkdir -p /out \
    && install -m 0755 -s build/ott-edge /out/ott-edge \
    && /out/ott-edge --version

# -------------------------------------------------------------------------- runtime stage
# Its packages are a stage of their own: it does not depend on the build stage, so a builder
# can make it alongside (BuildKit does; tools/containers.sh builds --target runtime-base
# beside the full build for buildah, which builds stages one after the other).
FROM debian:bookworm-slim AS runtime-base

# Only the shared libraries the binary loads (tools/deps.sh runtime: libh2o-evloop0.13,
# libssl3, libyaml-0-2, libcurl4, libjansson4, libbrotli1, libldns3, libcrypt1, libhiredis0.14,
# ca-certificates, and whatever that list grows to; libcurl, brotli, ldns, libcrypt and hiredis
# are dlopen()ed when their feature is used, so ldd does not list them: they stay installed
# here all the same), plus libcap2-bin for the setcap below. The same RUN removes what apt
# leaves behind -- its package caches (/var/cache/apt/*.bin, ~80 MB), downloaded .debs,
# lists, logs and the -old backups of debconf and dpkg: this must not rely on the base
# image's apt config (the official image's docker-clean hook), which other bases lack.
# The user gets a fixed uid so volume ownership is predictable.
COPY tools/deps.sh /tmp/tools/deps.sh
RUN /tmp/tools/deps.sh runtime \
    && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends libcap2-bin >/dev/null \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
       /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /tmp/tools \
    && groupadd --system --gid 10001 ott-edge \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/ott-edge --no-create-home \
       --shell /usr/sbin/nologin ott-edge \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/ott-edge \
    && install -d -m 0755 /etc/ott-edge

FROM runtime-base
# Binding 80 and 443 as uid 10001: the binary carries the file capability
# cap_net_bind_service (and nothing else). It is set here, in the final stage, because
# COPY --from does not reliably keep the security.capability xattr across stages
# (moby/buildkit#2250, kaniko#2866). The file capability needs NET_BIND_SERVICE in the
# container's bounding set (Docker's default set has it; with --cap-drop=ALL add
# --cap-add=NET_BIND_SERVICE, or exec fails with "operation not permitted").
# Docker >= 20.10 also lets any user bind low ports inside a container
# (net.ipv4.ip_unprivileged_port_start=0), so either route works there.
COPY --from=build /out/ott-edge /usr/local/bin/ott-edge
RUN setcap cap_net_bind_service=+ep /usr/local/bin/ott-edge \
    && setcap -v cap_net_bind_service=+ep /usr/local/bin/ott-edge >/dev/null

# ACME account key, certificates and renewal state live here: keep it on a named volume,
# or every restart starts over with Let's Encrypt (and soon hits its rate limits).
VOLUME /var/lib/ott-edge
USER 10001:10001
WORKDIR /var/lib/ott-edge

# 80: HTTP-01 challenges + redirect to HTTPS; 443: HTTPS (+ TLS-ALPN-01);
# 9901: admin listener (/livez, /readyz, /metrics) -- do not publish it to the internet.
EXPOSE 80 443 9901

# SIGTERM = graceful drain: /readyz goes 503, keep serving shutdown.delay (5s), stop
# accepting, drain for up to shutdown.grace (25s). Give `docker stop -t 35` or more.
STOPSIGNAL SIGTERM

# No curl in the image: the binary checks its own admin listener (GET /livez; 2 s timeout).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/ott-edge", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/ott-edge"]
