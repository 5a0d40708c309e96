#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan + fuzzer coverage) in
# their own build directory, replays every seed and saved crash, then fuzzes each target for
# a bounded time over its seed corpus. A new crash is saved to tests/fuzz/<name>/crashes/
# (keep it there: it becomes a regression input) and the script exits non-zero.
#
#   tools/fuzz.sh [options] [target...]      targets: config_yaml config_env acme_parse ...
#     -t SECONDS       fuzzing time per target (default $FUZZ_TIME or 20)
#     --replay-only    only replay seeds and saved crashes (what ctest runs)
#     --bin-dir DIR    use fuzzers already built in DIR (skip the build)
#     --build-dir DIR  build directory (default build-fuzzers/)
# Env: FUZZ_TIME, FUZZ_JOBS (targets fuzzed in parallel, default 1), CC (default clang).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$here/tests/fuzz
secs=${FUZZ_TIME:-20}
replay_only=0
bin_dir=""
build_dir=$here/build-fuzzers
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) secs=$2; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$fuzz_dir"/fuzz_*.c; do n=$(basename "$f" .c); targets+=("${n#fuzz_}"); done
fi

if [ -z "$bin_dir" ]; then
  cc=${CC:-clang}
  command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (tools/deps.sh test installs clang)" >&2; exit 2; }
  CC=$cc cmake -S "$here" -B "$build_dir" -DOE_FUZZ=ON -DOE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target fuzz >/dev/null
  bin_dir=$build_dir/tests/fuzz
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d /tmp/ott-edge-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()

# Every input in corpus/ and crashes/ must run clean.
replay() {
  local name=$1 bin=$bin_dir/fuzz_$1
  local files=()
  for d in corpus crashes; do
    [ -d "$fuzz_dir/$name/$d" ] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$fuzz_dir/$name/$d" -type f ! -name 'README*' -print0)
  done
  [ ${#files[@]} -gt 0 ] || return 0
  if ! "$bin" -runs=1 "${files[@]}" >"$work/$name.replay.log" 2>&1; then
    echo "fuzz: $name: a saved input fails:" >&2
    grep -E 'Running:|ERROR|SUMMARY|runtime error' "$work/$name.replay.log" | tail -8 >&2
    return 1
  fi
  echo "fuzz: $name: ${#files[@]} saved inputs replayed clean"
}

# Fuzzes for $secs seconds; new corpus entries go to a scratch dir, crashes to crashes/.
run() {
  local name=$1 bin=$bin_dir/fuzz_$1
  local crashes=$fuzz_dir/$name/crashes
  mkdir -p "$crashes" "$work/$name"
  local dict=()
  [ -f "$fuzz_dir/$name/fuzz.dict" ] && dict=(-dict="$fuzz_dir/$name/fuzz.dict")
  local before; before=$(find "$crashes" -type f | wc -l)
  set +e
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "${dict[@]}" "$work/$name" "$fuzz_dir/$name/corpus" >"$work/$name.log" 2>&1
  local rc=$?
  set -e
  local after; after=$(find "$crashes" -type f | wc -l)
  local execs; execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$name.log" | grep -oE '[0-9]+$' || true)
  local cov; cov=$(grep -oE 'cov: [0-9]+' "$work/$name.log" | tail -1 || true)
  if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
    echo "fuzz: $name: CRASH (exit $rc) — input saved in ${crashes#$here/}/" >&2
    grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "$work/$name.log" | head -20 >&2
    return 1
  fi
  echo "fuzz: $name: ${secs}s, ${execs:-?} runs, ${cov:-cov ?}, no crash"
}

for t in "${targets[@]}"; do
  [ -x "$bin_dir/fuzz_$t" ] || { echo "fuzz.sh: no fuzzer $bin_dir/fuzz_$t" >&2; exit 2; }
  replay "$t" || failed+=("$t")
done
if [ $replay_only -eq 0 ]; then
  jobs_max=${FUZZ_JOBS:-1}
  pids=(); names=()
  for t in "${targets[@]}"; do
    run "$t" & pids+=($!); names+=("$t")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 0.2; done
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all clean (${targets[*]})"
