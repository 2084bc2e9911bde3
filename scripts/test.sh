#!/usr/bin/env bash
# The whole test suite on a fresh machine: the real servers from Debian's packages, a clean build of the
# package (the sample imports it by name) and of the tests, then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-servers.sh
rm -rf .build
node scripts/build.js
npx tsc -p tsconfig.json
node .build/test/run.js "$@"
