#!/usr/bin/env bash
# access-cost.sh — what access control costs when it never triggers (issue 14): the one-site
# throughput of ott-edge with an allow-list and a rate limit configured, against the same
# binary with no access rules, back to back through tests/bench/run.sh --candidate.
#
#   tests/bench/access-cost.sh [--aa] [run.sh options...]
#     (default run.sh options: --peers "" --axes "h1_1k h2_1k" --rounds 3)
#   tests/bench/access-cost.sh --profile [--h2] [--requests N]
#     instructions per request under callgrind (tests/bench/profile.sh), without and with
#     the access block: the cost itself, free of the machine's noise
#
# The "candidate" column is a wrapper that appends to run.sh's ott-edge config:
#     access:
#       allow: [ten ranges, the bench client's 127.0.0.0/8 last]
#       rate: {requests: 1000000, per: 1s, burst: 1000000}   # never reached
# so every request parses its client address, walks the allow-list and takes a token from
# its bucket in the client table (one client here: every request on the same set lock, the
# worst case for the table's striping). The "ott-edge" column runs the config as it is.
#
# --aa runs the wrapper without adding anything (the same config in both columns): the
# difference between the columns is then the run-to-run noise alone, for comparison.
# Run it when the machine is quiet; the figures are only comparable within one run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${OTT_EDGE_BIN:-$root/build/ott-edge}
[ -x "$bin" ] || { echo "access-cost: no ott-edge binary at $bin (tools/build.sh)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

access_yaml() {
    cat <<'YAML'
access:
  allow: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 198.18.0.0/15, "2001:db8::/32",
          "fd00::/8", 203.0.113.0/24, 198.51.100.0/24, 127.0.0.0/8]
  rate: {requests: 1000000, per: 1s, burst: 1000000}
YAML
}

if [ "${1:-}" = --profile ]; then
    shift
    extra=$(mktemp /tmp/ott-edge-access-cost.XXXXXX.yaml)
    trap 'rm -f "$extra"' EXIT
    access_yaml >"$extra"
    for run in 1 2; do
        none=$("$here/profile.sh" --bin "$bin" --top 0 "$@") || true
        with=$(PROFILE_CONFIG_EXTRA=$extra "$here/profile.sh" --bin "$bin" --top 0 "$@") || true
        echo "run $run, no access rules:         $(grep 'instructions per request' <<<"$none")"
        echo "run $run, allow-list + rate limit: $(grep 'instructions per request' <<<"$with")"
    done
    exit 0
fi

aa=0
if [ "${1:-}" = --aa ]; then
    aa=1
    shift
fi
[ $# -gt 0 ] || set -- --peers "" --axes "h1_1k h2_1k" --rounds 3

work=$(mktemp -d /tmp/ott-edge-access-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
access_yaml >"$work/access.yaml"
wrapper=$work/ott-edge-with-access
cat >"$wrapper" <<EOF
#!/bin/sh
# run.sh starts: BIN --config FILE. Same PID after exec (run.sh measures the process by it).
[ "\$1" = --config ] || exec "$bin" "\$@"
cfg=\$2
shift 2
if [ $aa = 0 ]; then
    cp "\$cfg" "\$cfg.access.yaml"
    cat "$work/access.yaml" >>"\$cfg.access.yaml"
    cfg=\$cfg.access.yaml
fi
exec "$bin" --config "\$cfg" "\$@"
EOF
chmod +x "$wrapper"
if [ $aa = 0 ]; then
    "$wrapper" --config <(printf 'upstream: http://127.0.0.1:1\nlisten: {https: "127.0.0.1:1", http: "", admin: ""}\nacme: {enabled: false}\n') check-config >/dev/null 2>&1 ||
        true # (a process substitution cannot be copied; the real check is run.sh's start)
fi
echo "access-cost: ott-edge = no access rules; candidate = $([ $aa = 1 ] && echo 'the same (A/A: noise only)' || echo 'allow-list (10 ranges) + rate limit, never triggered')" >&2
"$here/run.sh" --candidate "$wrapper" "$@"
