#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, from the Swift toolchain) of the entry points a client's
# (or an upstream's) bytes reach first, a bounded run each: builds the fuzz targets with
# `--sanitize=fuzzer` in a build folder of their own (.build-fuzz), starts each from its seed
# corpus (Fuzz/corpus/http2: the bytes the HTTP/2 conformance cases send, see
# Tests/interop/h2_conformance.py; Fuzz/corpus/http1: HTTP/1.1 requests and responses of each
# framing) and the inputs of past findings (Fuzz/regressions/<target>), and fails on a crash, a
# broken bound, a hang or runaway memory. A finding is written to Fuzz/findings/<target>/; once
# fixed, it goes to Fuzz/regressions/<target>/, which the test suite replays.
#
# Usage: scripts/fuzz.sh [seconds per target (default 60)] [target...]
# Targets: http2-frames      the frame reader, HPACK decoding, requests and trailers from blocks
#          http2-connection  the connection handler and its streams, behind delegates that answer
#                            or hold their requests, with time moving on
#          http1-parser      the HTTP/1.1 parser of both sides, the same bytes read whole, in
#                            pieces and byte by byte, which must agree; each request it would
#                            forward written upstream and read back as that one request
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=${*:-http2-frames http2-connection http1-parser}

product_of() {
    case $1 in
    http2-frames) echo http2-frame-fuzzer ;;
    http2-connection) echo http2-connection-fuzzer ;;
    http1-parser) echo http1-parser-fuzzer ;;
    *) echo "fuzz: unknown target $1" >&2; return 1 ;;
    esac
}

corpus_of() {
    case $1 in
    http1-*) echo Fuzz/corpus/http1 ;;
    *) echo Fuzz/corpus/http2 ;;
    esac
}

build_path=.build-fuzz
for target in $targets; do
    product=$(product_of "$target")
    # FUZZING leaves out the replaying main, so that libFuzzer's is the program's; testing is
    # enabled so that a target may reach a module's internals (the HTTP/1.1 parser's).
    swift build -c release --build-path "$build_path" --sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -enable-testing \
        --product "$product" >/dev/null
    work=$(mktemp -d)
    mkdir -p "Fuzz/findings/$target"
    # The seed corpus is copied: what the run learns stays out of the repository.
    cp "$(corpus_of "$target")"/* "$work"/
    cp Fuzz/regressions/"$target"/* "$work"/ 2>/dev/null || true
    status=0
    # Swift's own crash backtracer would end the process before libFuzzer saves the input.
    SWIFT_BACKTRACE=enable=no "$build_path/release/$product" "$work" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="Fuzz/findings/$target/" -print_final_stats=1 >"$work.log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$work.log" | sed "s/^/fuzz: $target: /" || true
    if ((status != 0)); then
        tail -40 "$work.log" >&2
        echo "fuzz: $target: libFuzzer stopped with status $status (finding in Fuzz/findings/$target/)" >&2
        rm -rf "$work" "$work.log"
        exit 1
    fi
    echo "fuzz: $target: nothing found in ${seconds}s"
    rm -rf "$work" "$work.log"
done
