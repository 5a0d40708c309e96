#!/usr/bin/env bash
# Valgrind memcheck over the tests that do not depend on timing: every C unit test, and
# the integration tests that only start ott-edge, ask it things and stop it (config,
# check-config, healthcheck), with ott-edge itself running under memcheck. Fails on any
# memory error or definite leak.
#   tools/valgrind.sh [BUILD_DIR]      (default build/, built by tools/build.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ -x "$build/ott-edge" ] || "$here/tools/build.sh" "$build"
command -v valgrind >/dev/null || "$here/tools/deps.sh" test
vg=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions="$here/tests/valgrind.supp")

fail=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  if "${vg[@]}" "$t" >/tmp/ott-edge-vg.$$.log 2>&1; then
    echo "valgrind: $(basename "$t") ok"
  else
    echo "valgrind: $(basename "$t") FAILED"; tail -40 /tmp/ott-edge-vg.$$.log; fail=1
  fi
done
rm -f /tmp/ott-edge-vg.$$.log

# ott-edge under memcheck, started by the integration tests through a wrapper
wrap=$(mktemp /tmp/ott-edge-vg-wrap.XXXXXX)
trap 'rm -f "$wrap"' EXIT
cat > "$wrap" <<WRAP
#!/bin/sh
exec ${vg[*]} "$build/ott-edge" "\$@"
WRAP
chmod +x "$wrap"
if (cd "$here/tests" && OTT_EDGE_BIN="$wrap" OTT_EDGE_SANITIZE=1 node --test --test-reporter=dot \
      integration/config.test.mjs integration/healthcheck.test.mjs); then
  echo "valgrind: ott-edge under memcheck: config and healthcheck tests ok"
else
  echo "valgrind: ott-edge under memcheck: FAILED"; fail=1
fi
exit $fail
