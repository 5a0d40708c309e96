#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and starts the local demo
# (OTT-like upstream + local ACME server + ott-edge, all on loopback). Ctrl-C stops it.
#   ./tools/run.sh                 with a certificate from the local ACME server
#   ./tools/run.sh --self-signed   without the ACME server
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/deps.sh" test
"$here/tools/build.sh" "$here/build"
exec "$here/tools/demo.sh" "$@"
