# Stand-ins for the images docker-compose.yml and deploy/single-container/ take from a
# registry (none is reachable in CI), built from Debian's packages by tools/containers.sh:
#   --target ott       for dyc3/opentogethertube: the OTT-like test upstream
#                      (tests/upstream/ott-upstream.mjs) on Debian's nodejs + node-ws, with
#                      OTT's image layout (WORKDIR /app, CMD wait_for_db.sh -- yarn run start)
#   --target redis     for redis:7-bookworm: Debian's redis-server
#   --target postgres  for postgres:15-bookworm: Debian's postgresql-15, initialised from
#                      POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB like the official image
# The three share one layer of Debian packages (one apt run: the build is on CI's clock).
# Build context: a directory holding this file's COPY sources (tools/containers.sh makes it).
# They stand in for the real images in tests only; never publish them under those names.

FROM debian:bookworm-slim AS packages
# No "main" PostgreSQL cluster at install time: the postgres entrypoint makes one in PGDATA.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get -o DPkg::Lock::Timeout=300 update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
       nodejs node-ws redis-server postgresql-15 >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

FROM packages AS ott
WORKDIR /app
# ESM imports ignore NODE_PATH: make Debian's ws visible as /app/node_modules/ws.
RUN mkdir node_modules && ln -s /usr/share/nodejs/ws node_modules/ws
COPY ott-upstream.mjs wait_for_db.sh ./
COPY yarn /usr/local/bin/yarn
ENV NODE_ENV=production PORT=8080 OTT_UPSTREAM_HOST=0.0.0.0
EXPOSE 8080
CMD ["/bin/sh", "wait_for_db.sh", "--", "yarn", "run", "start"]

FROM packages AS redis
RUN install -d -o redis -g redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]

FROM packages AS postgres
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]
