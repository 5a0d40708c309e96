#!/usr/bin/env bash
# bench-guard — the short performance regression guard for CI (issue 5): a few seconds of
# `wrk -t2 -c64` over HTTPS/1.1 (1 KiB bodies) against ott-edge and nginx as TLS reverse
# proxies to the same local upstream, back to back. Fails only on a gross regression:
# ott-edge below 0.5x nginx's requests/s in the same run (measured once more before failing),
# or any error. Never fails on ordinary noise: the two are typically within 0.8-1.3x.
#
#   tools/bench-guard.sh            (env OTT_EDGE_BIN: the binary; default build/ott-edge,
#                                    BENCH_SECONDS: seconds per load, default 4)
# Installs nginx and wrk from Debian when missing (services kept from starting). Prints
# "bench-guard: N passed, M failed" last; exit 1 on failure. Runs tests/bench/run.sh --guard.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "$root/tests/bench/run.sh" --guard "$@"
