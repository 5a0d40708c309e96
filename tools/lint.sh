#!/usr/bin/env bash
# Static checks on the C sources: one clang-format style, cppcheck and clang-tidy
# (.clang-tidy: bug-prone patterns and the static analyzer) clean on pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { apt-get install -o DPkg::Lock::Timeout=300 -y -qq clang-format >/dev/null; }
command -v cppcheck >/dev/null || { apt-get install -o DPkg::Lock::Timeout=300 -y -qq cppcheck >/dev/null; }
command -v run-clang-tidy >/dev/null || { apt-get install -o DPkg::Lock::Timeout=300 -y -qq clang-tidy >/dev/null; }
files=$(git ls-files 'pkg/*.c' 'pkg/*.h' 'cmd/*.c' 'tests/unit/*.c' 2>/dev/null || find pkg cmd tests/unit -name '*.[ch]')
clang-format --dry-run -Werror $files
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
  --suppress=missingIncludeSystem --suppress=varFuncNullUB --inline-suppr -DH2O_USE_LIBUV=0 -DH2O_USE_EPOLL=1 -Ipkg pkg
# clang-tidy reads the compile commands of a configured tree (its own, so the normal
# build's flags stay untouched) and needs the generated status page header.
tidy_dir=${LINT_BUILD_DIR:-build-lint}
cmake -S . -B "$tidy_dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
cmake --build "$tidy_dir" --target oe_generated >/dev/null
run-clang-tidy -quiet -p "$tidy_dir" -j "$(nproc)" "$PWD/pkg/.*\.c\$" >"$tidy_dir/clang-tidy.log" 2>&1 || {
  grep -E 'warning:|error:' -A3 "$tidy_dir/clang-tidy.log" | grep -v '^--$' | head -100
  echo "lint: clang-tidy found problems (full output: $tidy_dir/clang-tidy.log)" >&2
  exit 1
}
echo "lint: ok"
