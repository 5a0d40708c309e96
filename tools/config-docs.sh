#!/usr/bin/env bash
# Regenerates the table of every configuration key in docs/configuration.md and README.md
# from `ott-edge config-reference` (the program's own key table), replacing the Markdown
# table that starts with "| Key | Environment variable |" in each file. The config unit test
# fails when either file lacks a generated row.
#   tools/config-docs.sh [BINARY]     (default build/ott-edge)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/ott-edge}
table=$("$bin" config-reference)
for f in "$here/docs/configuration.md" "$here/README.md"; do
  /usr/bin/python3 - "$f" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2].rstrip("\n") + "\n"
lines = open(path).read().splitlines(keepends=True)
start = next(i for i, l in enumerate(lines) if l.startswith("| Key | Environment variable |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
open(path, "w").write("".join(lines[:start]) + table + "".join(lines[end:]))
PY
done
echo "config-docs: docs/configuration.md and README.md updated"
