#!/usr/bin/env bash
# Configures and builds ott-edge with CMake.
#   tools/build.sh [BUILD_DIR] [extra cmake -D options...]
# BUILD_DIR defaults to build/. Warnings are errors (the CI setting).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
cmake -S "$here" -B "$dir" -DOE_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
