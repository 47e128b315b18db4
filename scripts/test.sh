#!/usr/bin/env bash
# Sets up and runs every test: unit tests, and end-to-end tests that start the real binaries,
# real redis-servers and PostgreSQL servers on free ports (each test its own), a real upstream,
# curl, wrk and the Python rate-sync library. Arguments go to `swift test` (e.g. --filter RedisEndToEndTests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh

# The real Python rate-sync (0.4.2, needs Python >= 3.12) for the interoperability tests, and
# the real WebSocket and gRPC libraries the tunnel tests talk through the gateway with.
if [[ -z "${RATESYNC_PYTHON:-}" ]]; then
    venv=.build/py-ratesync
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import ratesync, asyncpg, websockets, grpc, h2' 2>/dev/null; then
        python312=$(find_python312 || true)
        if [[ -n "$python312" ]]; then
            "$python312" -m venv "$venv"
            "$venv/bin/pip" install -q --disable-pip-version-check 'rate-sync[redis,postgres]==0.4.2' 'websockets==17.4' 'grpcio==1.85.3' 'h2==4.4.1'
        else
            echo "test: no Python >= 3.12 found; the rate-sync interoperability test will be skipped" >&2
        fi
    fi
    [[ -x "$venv/bin/python" ]] && export RATESYNC_PYTHON="$PWD/$venv/bin/python"
fi

swift build --build-tests
# XCTest only (there are no Swift Testing tests), and a plain closing line with XCTest's totals.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with " "$log" | tail -1 || true)
if [[ -n "$summary" ]]; then
    executed=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
    failures=$(sed -E 's/.* ([0-9]+) failures? .*/\1/' <<<"$summary")
    skipped=$(sed -nE 's/.*with ([0-9]+) tests? skipped.*/\1/p' <<<"$summary")
    skipped=${skipped:-0}
    echo "$((executed - failures - skipped)) passed, $failures failed, $skipped skipped"
fi
exit "$status"
