#!/usr/bin/env bash
# Counts the retains and releases one proxied HTTP/1.1 request costs the gateway, by the class
# of the object counted, and the function that asked.
#
# The release gateway (one worker, a memory limiter that admits everything, access log off)
# runs in front of the leanest upstream (nginx `return 200`) under `wrk -t1 -c64`. For one
# second, uprobes on the Swift runtime's `swift_retain` and `swift_release` record each call's
# object, the object's first word (its class's metadata) and the return address on the stack
# (the caller), and a uprobe on `ProxyHandler.begin` counts the requests. A class is named by
# the symbol of its metadata in the binary (a generic class's metadata is made at run time and
# shows as the runtime's allocation pool: SwiftNIO's ManagedAtomic<Bool> in each channel's state
# is the busiest); a caller by the function symbol before its address.
#
# Needs root (uprobes) and `perf`. Usage: scripts/bench-retains.sh [callers (default 0: by
# class only; N: also the N busiest class and caller pairs)]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

callers=${1:-0}

scripts/setup.sh --bench
command -v perf >/dev/null || { apt-get install -y -qq linux-perf >/dev/null; }
swift build $release_flags --product ratesync-gateway >/dev/null
bin=$(swift build $release_flags --show-bin-path)/ratesync-gateway

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    perf probe -q -d 'probe_ratesync:*' 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

upstream_port=$(free_port)
upstream_pids=($(start_lean_upstream "$upstream_port" "$work/upstream"))
pids+=("${upstream_pids[0]}")

port=$(free_port)
admin=$(free_port)
write_bench_gateway_config "$work" "$port" "$admin" "$upstream_port"

perf probe -q -d 'probe_ratesync:*' 2>/dev/null || true
for function in swift_retain swift_release; do
    perf probe -q -x "$bin" --add "probe_ratesync:$function=$function object=%di:u64 class=+0(%di):u64 caller=+0(%sp):u64"
done
perf probe -q -x "$bin" --add 'probe_ratesync:begin=$s7Gateway12ProxyHandlerC5beginyyAA13ClientRequestCF'

taskset -c 0 "$bin" --config "$work/gateway.toml" --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for_port "$port"
taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null
taskset -c 1 wrk -t1 -c64 -d4s "http://127.0.0.1:$port/" >/dev/null &
wrk_pid=$!
sleep 1
perf record -q -e probe_ratesync:swift_retain -e probe_ratesync:swift_release -e probe_ratesync:begin \
    -p "$gateway_pid" -o "$work/perf.data" -- sleep 1 >/dev/null 2>&1
wait "$wrk_pid"
load_address=$(grep -m1 "$bin" "/proc/$gateway_pid/maps" | cut -d- -f1)

perf script -i "$work/perf.data" -F event,trace 2>/dev/null >"$work/calls.txt"
nm "$bin" >"$work/symbols.txt"
python3 - "$work/calls.txt" "$work/symbols.txt" "$load_address" "$callers" <<'PYTHON' | swift demangle --simplified
import bisect, collections, re, sys

calls_path, symbols_path, load_address, callers = sys.argv[1], sys.argv[2], int(sys.argv[3], 16), int(sys.argv[4])
data, code = [], []
for line in open(symbols_path):
    parts = line.split()
    if len(parts) == 3:
        (code if parts[1] in "tTwW" else data).append((int(parts[0], 16), parts[2]))
data.sort()
code.sort()
data_addresses = [address for address, _ in data]
code_addresses = [address for address, _ in code]

def symbol(table, addresses, runtime_address):
    offset = runtime_address - load_address
    index = bisect.bisect_right(addresses, offset) - 1
    if offset < 0 or index < 0 or offset - addresses[index] > 1 << 20:
        return "(made at run time)"
    name = table[index][1]
    return name if offset == addresses[index] else "%s+%d" % (name, offset - addresses[index])

requests = 0
by_class = collections.Counter()
by_caller = collections.Counter()
for line in open(calls_path):
    event = line.split(":")[1]
    if event == "begin":
        requests += 1
        continue
    fields = dict(re.findall(r"(\w+)=(\d+)", line))
    kind = "retain" if event == "swift_retain" else "release"
    obj = int(fields["object"])
    if obj == 0 or obj >= 1 << 63:
        by_class[("nil or tagged (returns at once)", kind)] += 1
        continue
    name = symbol(data, data_addresses, int(fields["class"]))
    by_class[(name, kind)] += 1
    by_caller[(name, symbol(code, code_addresses, int(fields["caller"])), kind)] += 1

print(f"requests counted: {requests}")
print(f"{'retains':>8} {'releases':>8}  class (per request)")
classes = sorted({name for name, _ in by_class}, key=lambda n: -(by_class[(n, 'retain')] + by_class[(n, 'release')]))
for name in classes:
    retains, releases = by_class[(name, "retain")] / requests, by_class[(name, "release")] / requests
    if retains + releases >= 0.5:
        print(f"{retains:8.1f} {releases:8.1f}  {name}")
total = sum(by_class.values()) / requests
print(f"total {total:.1f} per request")
if callers:
    print(f"\n{'calls':>8}  kind     class  <-  caller (the {callers} busiest pairs)")
    for (name, caller, kind), count in by_caller.most_common(callers):
        print(f"{count / requests:8.1f}  {kind:8} {name}  <-  {caller}")
PYTHON
