#!/usr/bin/env bash
# Regenerates the tables of every configuration key in docs/configuration.md and README.md
# from `ott-edge config-reference` (the program's own key tables): each generated table
# replaces the table in the file that has the same header line. The config unit test fails
# when either file lacks a generated row.
#   tools/config-docs.sh [BINARY]     (default build/ott-edge)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/ott-edge}
table=$("$bin" config-reference)
for f in "$here/docs/configuration.md" "$here/README.md"; do
  /usr/bin/python3 - "$f" "$table" <<'PY'
import sys
path, generated = sys.argv[1], sys.argv[2]
# each table of the generated text replaces the table in the file with the same header line
tables = [t.strip("\n").splitlines(keepends=False) for t in generated.split("\n\n") if t.startswith("|")]
lines = open(path).read().splitlines(keepends=True)
for t in tables:
    start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == t[0]), None)
    if start is None:
        sys.exit(f"config-docs: {path} has no table headed {t[0]!r}")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[start:end] = [l + "\n" for l in t]
open(path, "w").write("".join(lines))
PY
done
echo "config-docs: docs/configuration.md and README.md updated"
