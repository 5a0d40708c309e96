#!/usr/bin/env bash
# Installs what ott-edge needs from Debian bookworm's packages, by purpose:
#   tools/deps.sh build    compilers, headers and libraries to build the binary
#   tools/deps.sh runtime  only the shared libraries the binary loads (linked or dlopen()ed)
#   tools/deps.sh test     build + everything the test suite starts (pebble, curl,
#                          nghttp2 tools, clang for sanitizers/fuzzing, Chromium with
#                          certutil for the browser test, Node's ws and playwright-core)
# Idempotent; skips apt-get when everything is already installed.
set -euo pipefail
what=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)

# runtime: libcurl4, libbrotli1, libldns3, libcrypt1 and libhiredis0.14 are not in the binary's
# NEEDED list (ldd and dpkg-shlibdeps do not see them): ott-edge dlopen()s each when the feature
# that needs it is configured or first used (pkg/util/dynlib). Keep them here all the same.
runtime_pkgs=(libh2o-evloop0.13 libssl3 libyaml-0-2 libcurl4 libjansson4 libbrotli1 libldns3 libcrypt1 libhiredis0.14 ca-certificates)
build_pkgs=(build-essential cmake pkg-config libh2o-evloop-dev libssl-dev libyaml-dev
            libcurl4-openssl-dev libjansson-dev libbrotli-dev libldns-dev libcrypt-dev libhiredis-dev)
test_pkgs=(curl nghttp2-client pebble openssl clang libclang-rt-14-dev clang-format clang-tidy cppcheck git procps iproute2
           python3-h2 valgrind chromium libnss3-tools fonts-dejavu-core prometheus knot knot-dnsutils unbound whois apache2-utils
           redis-server haproxy)

case "$what" in
  runtime) pkgs=("${runtime_pkgs[@]}") ;;
  build) pkgs=("${build_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 build|runtime|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "deps: installing ${missing[*]}" >&2
  # wait (up to 5 min) for another apt/dpkg run to finish instead of failing at once
  apt=(apt-get -o DPkg::Lock::Timeout=300)
  $sudo "${apt[@]}" update -qq
  # never let a package's service (e.g. nginx) start on this machine's ports
  $sudo env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = test ]; then
  command -v node >/dev/null || { echo "deps: Node.js 18+ is needed for the integration tests" >&2; exit 1; }
  if [ ! -d "$here/tests/node_modules/ws" ] || [ ! -d "$here/tests/node_modules/playwright-core" ]; then
    (cd "$here/tests" && npm ci --no-audit --no-fund --silent)
  fi
fi
