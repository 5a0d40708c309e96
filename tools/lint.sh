#!/usr/bin/env bash
# Static checks on the C sources: one clang-format style, cppcheck clean on pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { apt-get install -y -qq clang-format >/dev/null; }
command -v cppcheck >/dev/null || { apt-get install -y -qq cppcheck >/dev/null; }
files=$(git ls-files 'pkg/*.c' 'pkg/*.h' 'cmd/*.c' 'tests/unit/*.c' 2>/dev/null || find pkg cmd tests/unit -name '*.[ch]')
clang-format --dry-run -Werror $files
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
  --suppress=missingIncludeSystem --suppress=varFuncNullUB --inline-suppr -DH2O_USE_LIBUV=0 -DH2O_USE_EPOLL=1 -Ipkg pkg
echo "lint: ok"
