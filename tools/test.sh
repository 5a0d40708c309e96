#!/usr/bin/env bash
# The README's test command: installs what the suite needs (Debian packages, Node's ws),
# builds, lints, runs the whole suite, a short throughput guard against nginx, fuzzes each
# libFuzzer target for a bounded time,
# runs the non-timing tests under Valgrind, then the whole suite again under
# AddressSanitizer + UBSan.
#   ./tools/test.sh            everything (what CI runs)
#   ./tools/test.sh fast       normal build only, no lint, no sanitizers
#   ./tools/test.sh asan       sanitizer build only
#   extra arguments after the mode go to ctest (e.g. -R it.core)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mode=${1:-all}
shift || true
ctest_args=(--output-on-failure --timeout 600 -j2 "$@")

tools/deps.sh test

normal() {
  tools/build.sh "$here/build"
  (cd build && ctest "${ctest_args[@]}")
}
asan() {
  tools/build.sh "$here/build-asan" -DOE_SANITIZE=ON
  # the slow-labelled tests (long idle timers) prove nothing more under ASan
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest "${ctest_args[@]}" -LE slow)
}

case "$mode" in
  fast) normal ;;
  asan) asan ;;
  all)
    tools/lint.sh
    [ -x .ci/deploy-checks.sh ] && .ci/deploy-checks.sh
    tools/containers.sh # the real images with podman (~2-3 min with its layer cache, 6-9 min from nothing)
    normal
    tools/bench-guard.sh # a few seconds of load: fails only on a gross regression (< 0.5x nginx)
    FUZZ_TIME=${FUZZ_TIME:-10} tools/fuzz.sh
    tools/valgrind.sh "$here/build"
    asan
    ;;
  *) echo "usage: $0 [all|fast|asan] [ctest args...]" >&2; exit 2 ;;
esac
