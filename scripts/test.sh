#!/usr/bin/env bash
# Sets up and runs every test: unit tests and end-to-end tests against the real binaries, a real
# redis-server on a free port, a real upstream and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh

# A throwaway Redis for the tests that need one, unless the caller gave one.
if [[ -z "${REDIS_TEST_URL:-}" ]]; then
    redis_port=$(free_port)
    redis_pid=$(start_redis "$redis_port" "${TMPDIR:-/tmp}/ratesync-test-redis.log")
    trap 'kill $redis_pid 2>/dev/null || true' EXIT
    wait_for_port "$redis_port"
    export REDIS_TEST_URL="redis://127.0.0.1:$redis_port/0"
fi

swift build --build-tests
swift test --skip-build "$@"
