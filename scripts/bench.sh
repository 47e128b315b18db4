#!/usr/bin/env bash
# Benchmarks, in one run and against one upstream:
#   direct   wrk -> demo upstream
#   gateway  wrk -> ratesync-gateway (memory store, a limiter that admits everything) -> upstream
#   nginx    wrk -> nginx (proxy_pass, upstream keep-alive, one worker) -> upstream
# The proxy under test is pinned to core 0; wrk and the upstream to core 1. On two cores the load
# side saturates first, so besides requests/s, p50 and p99 the script prints each proxy's CPU time
# per request (user+sys of its processes over the run / requests served) and gateway/nginx ratios.
#
# Usage: scripts/bench.sh [duration-seconds (default 10)] [connections (default 50)]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

duration=${1:-10}
connections=${2:-50}
proxy_core=0
load_core=1

scripts/setup.sh --bench
swift build -c release --product ratesync-gateway >/dev/null
swift build -c release --product ratesync-demo-upstream >/dev/null
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ticks=$(getconf CLK_TCK)

# CPU ticks (user+sys) used so far by the given processes and their threads.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat; the command name (field 2) may contain spaces.
        read -r utime stime < <(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
        total=$((total + utime + stime))
    done
    echo "$total"
}

# Runs wrk against $1 and prints "requests rps p50_ms p99_ms".
run_wrk() {
    local url=$1 out
    out=$(taskset -c "$load_core" wrk -t1 -c"$connections" -d"${duration}s" --latency "$url")
    local requests rps p50 p99
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$requests $rps $(to_ms "$p50") $(to_ms "$p99")"
}

# wrk prints latencies as 512.00us, 1.20ms or 1.01s.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else print v }'
}

# Measures one target: prints its wrk figures and the CPU per request of the given pids.
measure() {
    local name=$1 url=$2
    shift 2
    local before after requests rps p50 p99 cpu_us
    # A short warm-up so connection setup and first-touch costs are not measured.
    taskset -c "$load_core" wrk -t1 -c"$connections" -d2s "$url" >/dev/null
    before=$(cpu_ticks "$@")
    read -r requests rps p50 p99 < <(run_wrk "$url")
    after=$(cpu_ticks "$@")
    cpu_us=$(awk -v t=$((after - before)) -v hz="$ticks" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    printf "%-8s %10s %9s %9s %12s\n" "$name" "$rps" "$p50" "$p99" "$cpu_us"
    eval "${name}_rps=$rps ${name}_p50=$p50 ${name}_p99=$p99 ${name}_cpu=$cpu_us"
}

upstream_port=$(free_port)
taskset -c "$load_core" "$bin/ratesync-demo-upstream" --port "$upstream_port" --threads 1 >"$work/upstream.log" 2>&1 &
upstream_pid=$!
pids+=("$upstream_pid")
wait_for_port "$upstream_port"

gateway_port=$(free_port)
admin_port=$(free_port)
cat >"$work/rate-sync.toml" <<TOML
[stores.local]
engine = "memory"
[limiters.bench]
store = "local"
rate_per_second = 100000000
TOML
cat >"$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$gateway_port"
workers = 1
[admin]
listen = "127.0.0.1:$admin_port"
[upstreams.app]
url = "http://127.0.0.1:$upstream_port"
[[routes]]
name = "bench"
path_prefix = "/"
upstream = "app"
limiters = ["bench"]
identifier = "client_ip"
TOML
taskset -c "$proxy_core" "$bin/ratesync-gateway" --config "$work/gateway.toml" --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for_port "$gateway_port"

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    upstream app { server 127.0.0.1:$upstream_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
NGINX
taskset -c "$proxy_core" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_master=$!
pids+=("$nginx_master")
wait_for_port "$nginx_port"
nginx_pids=("$nginx_master" $(pgrep -P "$nginx_master"))

echo "bench: ${duration}s per target, $connections connections, wrk and upstream on core $load_core, proxy on core $proxy_core"
echo "bench: $(nproc) cores, $(uname -r), $(swift --version 2>/dev/null | head -1)"
printf "%-8s %10s %9s %9s %12s\n" target "req/s" "p50 ms" "p99 ms" "cpu us/req"
measure direct "http://127.0.0.1:$upstream_port/bench" "$upstream_pid"
measure gateway "http://127.0.0.1:$gateway_port/bench" "$gateway_pid"
measure nginx "http://127.0.0.1:$nginx_port/bench" "${nginx_pids[@]}"

# Every gateway answer must have been a 200 with the limiter's headers.
check=$(curl -s -o /dev/null -w '%{http_code} %header{x-ratelimit-limit}' "http://127.0.0.1:$gateway_port/bench")
echo "gateway answer check: $check"

awk -v gc="$gateway_cpu" -v nc="$nginx_cpu" -v gp="$gateway_p99" -v np="$nginx_p99" -v gr="$gateway_rps" -v nr="$nginx_rps" 'BEGIN {
    printf "ratios gateway/nginx: cpu per request %.2fx (target <= 1.6x), p99 %.2fx (target <= 1.5x), req/s %.2fx\n", gc / nc, gp / np, gr / nr
}'
