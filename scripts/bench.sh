#!/usr/bin/env bash
# Benchmarks, in one run and against one upstream, these scenarios:
#
# memory: direct    wrk -> the upstream
#         gateway   wrk -> ratesync-gateway (memory store, a limiter that admits everything) -> upstream
#         nginx     wrk -> nginx (proxy_pass, upstream keep-alive, one worker) -> upstream
#         measured twice: access logs off on both, then on on both (nginx's default combined
#         format to a file; the gateway's JSON lines to a file); logs off also at one offered
#         load below both proxies' saturation (each connection waits BENCH_THINK_MS, default 2,
#         after each answer), for latency that is not requests/s restated
# redis:  gateway   the same with a Redis-backed limiter that admits everything
#         nginx-lua nginx doing a per-request GCRA check on the same Redis in Lua (OpenResty style:
#                   access_by_lua with nginx.redis, EVALSHA, pooled connections)
# fault:  the gateway's Redis-backed route with Redis healthy, then with Redis hung (SIGSTOP)
#         once the circuit breaker has opened: p99 against p99.
# h2:     h2load over TLS (h2 by ALPN, many streams per connection) through the gateway and
#         through nginx (http2 listener, proxy_pass to the same HTTP/1.1 upstream).
# cluster: a three-primary Redis Cluster (all on core 1) against the standalone Redis, both with
#         identifiers spread over 100,000 values (wrk picks one per request), so that a cluster's
#         slots all get their share: the gateway's CPU per request in each mode, the cluster's
#         Redis CPU per check, script calls per request, and each shard's share of the CPU;
#         BENCH_ROUNDS rounds (at least three) alternating, medians of the ratios; then the
#         gateway's CPU per request in each mode at one offered rate (BENCH_SPREAD_RATE requests
#         per second, default 20000, by h2load --rps). Not in the default set.
# relay:  the gateway, a TCP relay on SwiftNIO that parses nothing (ratesync-bench-relay: one
#         upstream connection per client connection, bytes passed on as read) and nginx, logs
#         off: the floor SwiftNIO's channels set for any proxy built on them. Not in the default set.
# identity: the gateway's memory route keyed on client_ip against the same route keyed on the
#         `sub` of an RS256 bearer token (openssl-made key, JWKS and token): what a verified
#         identity costs per request once each event loop has seen the token. Not in the default set.
#
# The upstream is the leanest there is: nginx answering `return 200` in one write, so that what
# is compared is the cost of proxying, not of the upstream. The proxy under test (gateway
# `workers = 1`, nginx `worker_processes 1`) is pinned to core 0; wrk, the upstream and Redis to
# core 1. On two cores both sides run near their core's limit, so besides requests/s, p50 and
# p99 the script prints each proxy's CPU time per request (user+sys of its processes over the
# run / requests served; in the memory, relay, fault and identity tables also split into user
# and system time), and for the redis scenario Redis's CPU time per check and script calls per
# request.
#
# These machines are noisy: BENCH_ROUNDS=N (default 1) measures the gateway and its peer N times
# in turn in the memory and h2 scenarios and reports the median of the N ratios.
#
# Usage: scripts/bench.sh [duration-seconds (default 10)] [connections (default 64)] [scenario...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=${BENCH_ROUNDS:-1}
duration=${1:-10}
connections=${2:-64}
shift 2 2>/dev/null || shift $#
scenarios=${*:-memory redis fault h2}
proxy_core=0
load_core=1

scripts/setup.sh --bench
swift build $release_flags --product ratesync-gateway >/dev/null
bin=$(swift build $release_flags --show-bin-path)

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ticks=$(getconf CLK_TCK)

# CPU ticks used so far by the given processes and their threads: "user system".
cpu_split_ticks() {
    local user=0 system=0 pid
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat; the command name (field 2) may contain spaces.
        read -r utime stime < <(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
        user=$((user + utime))
        system=$((system + stime))
    done
    echo "$user $system"
}

# CPU ticks (user+sys) used so far by the given processes and their threads.
cpu_ticks() {
    local user system
    read -r user system < <(cpu_split_ticks "$@")
    echo $((user + system))
}

# Runs wrk against $1 and prints "requests rps p50_ms p99_ms".
wrk_headers=()
run_wrk() {
    local url=$1 out
    out=$(taskset -c "$load_core" wrk -t1 -c"$connections" -d"${duration}s" --latency "${wrk_headers[@]}" "$url")
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

# Microseconds per request of $1 clock ticks over $2 requests.
us_per_request() {
    awk -v t="$1" -v hz="$ticks" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'
}

# The header of measure's table.
measure_header() {
    printf "%-8s %10s %9s %9s %12s %9s %9s\n" target "req/s" "p50 ms" "p99 ms" "cpu us/req" "user us" "sys us"
}

# Measures one target: prints its wrk figures and the CPU per request of the given pids, whole
# and split into user and system time (both proxies make the same system calls per request, so
# a difference in user time is one in their own code).
measure() {
    local name=$1 url=$2
    shift 2
    local user_before system_before user_after system_after requests rps p50 p99 cpu_us user_us system_us
    # A short warm-up so connection setup and first-touch costs are not measured.
    taskset -c "$load_core" wrk -t1 -c"$connections" -d2s "${wrk_headers[@]}" "$url" >/dev/null
    read -r user_before system_before < <(cpu_split_ticks "$@")
    read -r requests rps p50 p99 < <(run_wrk "$url")
    read -r user_after system_after < <(cpu_split_ticks "$@")
    cpu_us=$(us_per_request $((user_after + system_after - user_before - system_before)) "$requests")
    user_us=$(us_per_request $((user_after - user_before)) "$requests")
    system_us=$(us_per_request $((system_after - system_before)) "$requests")
    printf "%-8s %10s %9s %9s %12s %9s %9s\n" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$user_us" "$system_us"
    eval "${name}_rps=$rps ${name}_p50=$p50 ${name}_p99=$p99 ${name}_cpu=$cpu_us ${name}_user=$user_us ${name}_sys=$system_us"
}

# The median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# Measures gateway and nginx in turn, $rounds times; the last round's figures stay in the
# variables the measuring function sets, cpu_ratios holds every round's CPU ratio, and
# p99_ratios every round's p99 ratio (wrk's rounds: measure).
# $1: the measuring function (measure, measure_h2), $2: the suffix of the CPU variable it sets
# (cpu, h2_cpu), $3: gateway URL, $4: nginx URL, $5...: nginx pids.
measure_rounds() {
    local measure_with=$1 cpu_suffix=$2 gateway_url=$3 nginx_url=$4 round
    shift 4
    local gateway_cpu_var="gateway_$cpu_suffix" nginx_cpu_var="nginx_$cpu_suffix"
    cpu_ratios=()
    p99_ratios=()
    user_ratios=()
    sys_ratios=()
    for ((round = 1; round <= rounds; round++)); do
        "$measure_with" gateway "$gateway_url" "$gateway_pid"
        "$measure_with" nginx "$nginx_url" "$@"
        cpu_ratios+=("$(ratio "${!gateway_cpu_var}" "${!nginx_cpu_var}")")
        if [[ "$measure_with" == measure ]]; then
            p99_ratios+=("$(ratio "$gateway_p99" "$nginx_p99")")
            user_ratios+=("$(ratio "$gateway_user" "$nginx_user")")
            sys_ratios+=("$(ratio "$gateway_sys" "$nginx_sys")")
        fi
    done
}

# $1 / $2 to two places; "inf" when $2 is zero (a run too short for one clock tick).
ratio() {
    awk -v g="$1" -v n="$2" 'BEGIN { if (n == 0) print "inf"; else printf "%.2f", g / n }'
}

# "1.52x" or, over several rounds, "1.52x (median of 3 rounds: 1.49 1.52 1.60)", of the ratios
# given.
ratio_text() {
    if (($# == 1)); then
        echo "$1x"
    else
        echo "$(median "$@")x (median of $# rounds: $*)"
    fi
}

cpu_ratio_text() {
    ratio_text "${cpu_ratios[@]}"
}

p99_ratio_text() {
    ratio_text "${p99_ratios[@]}"
}

# "user 1.80x, sys 0.85x": where the CPU ratio's difference lies, as medians of the rounds.
split_ratio_text() {
    echo "user $(median "${user_ratios[@]}")x, sys $(median "${sys_ratios[@]}")x"
}

# The lean upstream: nginx answering 200 itself, on the load core.
upstream_port=$(free_port)
upstream_pids=($(start_lean_upstream "$upstream_port" "$work/upstream" "$load_core"))
pids+=("${upstream_pids[0]}")

gateway_port=$(free_port)
admin_port=$(free_port)
# nginx runs with access_log off; so does the gateway here (metrics stay on).
write_bench_gateway_config "$work" "$gateway_port" "$admin_port" "$upstream_port"
# The same with the access log on, to a file (as nginx's below).
sed "s|^enabled = false|enabled = true\npath = \"$work/gateway-access.log\"|" "$work/gateway.toml" >"$work/gateway-log.toml"
taskset -c "$proxy_core" "$bin/ratesync-gateway" --config "$work/gateway.toml" --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for_port "$gateway_port"

# Writes $1/nginx.conf: one worker, proxy_pass to the upstream with upstream keep-alive.
# $2: the listen directive; $3: upstream keepalive connections; $4: lines inside `location /`
# before proxy_pass; $5: lines before `events`; $6: lines inside `server`; $7: the access_log
# directive's argument (default off).
write_nginx_config() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<NGINX
$5
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log ${7:-off};
    lua_package_path_placeholder;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    upstream app { server 127.0.0.1:$upstream_port; keepalive $3; }
    server {
        listen $2;
        $6
        location / {
            $4
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
NGINX
    # Only the Lua peer needs a package path; elsewhere the line goes.
    if [[ "$5" == *lua* ]]; then
        sed -i 's|lua_package_path_placeholder;|lua_package_path "/usr/share/lua/5.1/?.lua;;";|' "$dir/nginx.conf"
    else
        sed -i '/lua_package_path_placeholder;/d' "$dir/nginx.conf"
    fi
}

# Starts the nginx of $1 pinned to the proxy core, waits for port $2, and prints its master's
# and workers' pids (the caller adds the master to `pids`: this runs in a subshell).
start_nginx() {
    taskset -c "$proxy_core" nginx -p "$1" -c "$1/nginx.conf" >/dev/null 2>&1 &
    local master=$!
    wait_for_port "$2"
    echo "$master" $(pgrep -P "$master")
}

nginx_port=$(free_port)
write_nginx_config "$work/nginx" "127.0.0.1:$nginx_port" 64 "" "" ""
nginx_pids=($(start_nginx "$work/nginx" "$nginx_port"))
pids+=("${nginx_pids[0]}")
nginx_log_port=$(free_port)
write_nginx_config "$work/nginx-log" "127.0.0.1:$nginx_log_port" 64 "" "" "" "$work/nginx-access.log"
nginx_log_pids=($(start_nginx "$work/nginx-log" "$nginx_log_port"))
pids+=("${nginx_log_pids[0]}")

echo "bench: ${duration}s per target, $connections connections, wrk, upstream and redis on core $load_core, proxy on core $proxy_core"
echo "bench: $(nproc) cores, $(uname -r), $(swift --version 2>/dev/null | head -1), $(redis-server --version | awk '{print $3}')"

redis_port=$(free_port)
taskset -c "$load_core" redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for_port "$redis_port"

# Calls of EVALSHA and EVAL so far (the round trips a limiter makes).
script_calls() {
    redis-cli -p "${1:-$redis_port}" INFO commandstats |
        awk -F'[:=,]' '/^cmdstat_(evalsha|eval):/ {sum += $3} END {print sum + 0}'
}

# Like measure, also reporting Redis's CPU per check and script calls per request.
measure_with_redis() {
    local name=$1 url=$2
    shift 2
    taskset -c "$load_core" wrk -t1 -c"$connections" -d2s "$url" >/dev/null
    local before after redis_before redis_after calls_before calls_after requests rps p50 p99 cpu_us redis_us per_request
    before=$(cpu_ticks "$@")
    redis_before=$(cpu_ticks "$redis_pid")
    calls_before=$(script_calls)
    read -r requests rps p50 p99 < <(run_wrk "$url")
    after=$(cpu_ticks "$@")
    redis_after=$(cpu_ticks "$redis_pid")
    calls_after=$(script_calls)
    cpu_us=$(us_per_request $((after - before)) "$requests")
    redis_us=$(us_per_request $((redis_after - redis_before)) "$requests")
    per_request=$(awk -v c=$((calls_after - calls_before)) -v n="$requests" 'BEGIN { printf "%.3f", c / n }')
    printf "%-10s %10s %9s %9s %12s %14s %14s\n" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$redis_us" "$per_request"
    eval "${name//-/_}_rps=$rps ${name//-/_}_p99=$p99 ${name//-/_}_cpu=$cpu_us ${name//-/_}_redis=$redis_us"
}

start_gateway() {
    local config=$1 port=$2
    taskset -c "$proxy_core" "$bin/ratesync-gateway" --config "$config" --log-level error >>"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    wait_for_port "$port"
}

stop_gateway() {
    kill "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
}

# The Redis-backed gateway config of the redis and fault scenarios.
cat >"$work/rate-sync-redis.toml" <<TOML
[stores.redis]
engine = "redis"
url = "redis://127.0.0.1:$redis_port/0"
[limiters.bench]
store = "redis"
rate_per_second = 100000000
TOML
sed "s|rate-sync.toml|rate-sync-redis.toml|" "$work/gateway.toml" >"$work/gateway-redis.toml"
grep -q '^\[rate_sync\]' "$work/gateway-redis.toml" ||
    printf '[rate_sync]\nconfig = "%s"\n' "$work/rate-sync-redis.toml" >>"$work/gateway-redis.toml"

if [[ " $scenarios " == *" memory "* ]]; then
    echo
    echo "== memory: the proxy alone (in-memory limiter), access logs off on both =="
    measure_header
    measure direct "http://127.0.0.1:$upstream_port/bench" "${upstream_pids[@]}"
    measure_rounds measure cpu "http://127.0.0.1:$gateway_port/bench" "http://127.0.0.1:$nginx_port/bench" "${nginx_pids[@]}"

    # Every gateway answer must have been a 200 with the limiter's headers.
    check=$(curl -s -o /dev/null -w '%{http_code} %header{x-ratelimit-limit}' "http://127.0.0.1:$gateway_port/bench")
    echo "gateway answer check: $check"
    awk -v c="$(cpu_ratio_text)" -v s="$(split_ratio_text)" -v p="$(p99_ratio_text)" -v gr="$gateway_rps" -v nr="$nginx_rps" 'BEGIN {
        printf "ratios gateway/nginx, logs off: cpu per request %s (target <= 1.5x; %s), p99 %s (target <= 1.0x), req/s %.2fx\n", c, s, p, gr / nr
    }'

    # Saturated, a closed loop's mean latency is its connections over its rate (Little's law),
    # so the p99 above mostly restates requests/s. The same again at one offered load that both
    # proxies carry: each connection waits BENCH_THINK_MS (default 2) after each answer.
    think_ms=${BENCH_THINK_MS:-2}
    echo
    echo "== memory: logs off, at one offered load (each connection waits $think_ms ms after each answer) =="
    echo "function delay() return $think_ms end" >"$work/think.lua"
    wrk_headers=(-s "$work/think.lua")
    measure_header
    measure_rounds measure cpu "http://127.0.0.1:$gateway_port/bench" "http://127.0.0.1:$nginx_port/bench" "${nginx_pids[@]}"
    wrk_headers=()
    awk -v c="$(cpu_ratio_text)" -v s="$(split_ratio_text)" -v p="$(p99_ratio_text)" -v g50="$gateway_p50" -v n50="$nginx_p50" -v gr="$gateway_rps" -v nr="$nginx_rps" 'BEGIN {
        printf "ratios gateway/nginx at one offered load: p99 %s (target <= 1.0x), p50 %.2fx, cpu per request %s (%s), req/s %.2fx\n", p, g50 / n50, c, s, gr / nr
    }'

    echo
    echo "== memory: the same, access logs on on both (to files) =="
    stop_gateway
    start_gateway "$work/gateway-log.toml" "$gateway_port"
    measure_header
    measure_rounds measure cpu "http://127.0.0.1:$gateway_port/bench" "http://127.0.0.1:$nginx_log_port/bench" "${nginx_log_pids[@]}"
    echo "access log lines: gateway $(wc -l <"$work/gateway-access.log"), nginx $(wc -l <"$work/nginx-access.log")"
    awk -v c="$(cpu_ratio_text)" -v s="$(split_ratio_text)" -v p="$(p99_ratio_text)" -v gr="$gateway_rps" -v nr="$nginx_rps" 'BEGIN {
        printf "ratios gateway/nginx, logs on: cpu per request %s (target <= 1.5x; %s), p99 %s (target <= 1.0x), req/s %.2fx\n", c, s, p, gr / nr
    }'
    stop_gateway
    start_gateway "$work/gateway.toml" "$gateway_port"
fi

if [[ " $scenarios " == *" relay "* ]]; then
    echo
    echo "== relay: the floor SwiftNIO sets, a TCP relay that parses nothing, access logs off =="
    swift build $release_flags --product ratesync-bench-relay >/dev/null
    relay_port=$(free_port)
    taskset -c "$proxy_core" "$bin/ratesync-bench-relay" "$relay_port" "$upstream_port" >"$work/relay.log" 2>&1 &
    relay_pid=$!
    pids+=("$relay_pid")
    wait_for_port "$relay_port"
    echo "relay answer check: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$relay_port/bench")"
    measure_header
    relay_ratios=()
    gateway_relay_ratios=()
    for ((round = 1; round <= rounds; round++)); do
        measure gateway "http://127.0.0.1:$gateway_port/bench" "$gateway_pid"
        measure relay "http://127.0.0.1:$relay_port/bench" "$relay_pid"
        measure nginx "http://127.0.0.1:$nginx_port/bench" "${nginx_pids[@]}"
        relay_ratios+=("$(ratio "$relay_cpu" "$nginx_cpu")")
        gateway_relay_ratios+=("$(ratio "$gateway_cpu" "$relay_cpu")")
    done
    echo "ratios, cpu per request: relay/nginx $(ratio_text "${relay_ratios[@]}"), gateway/relay $(ratio_text "${gateway_relay_ratios[@]}")"
fi

if [[ " $scenarios " == *" redis "* ]]; then
    echo
    echo "== redis: a Redis check per request =="
    stop_gateway
    start_gateway "$work/gateway-redis.toml" "$gateway_port"

    # The peer: the same GCRA check (TIME, GET, SET PX) as one EVALSHA per request from Lua.
    lua_port=$(free_port)
    mkdir -p "$work/nginx-lua"
    cat >"$work/nginx-lua/gcra.lua" <<'LUA'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local new_tat = tat + interval
if new_tat - burst * interval > now then return {0} end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1}
LUA
    gcra_sha=$(redis-cli -p "$redis_port" SCRIPT LOAD "$(cat "$work/nginx-lua/gcra.lua")")
    lua_check="access_by_lua_block {
                local redis = require \"nginx.redis\"
                local r = redis:new()
                r:set_timeouts(100, 100, 100)
                local ok = r:connect(\"127.0.0.1\", $redis_port)
                if not ok then return end
                local res = r:evalsha(\"$gcra_sha\", 1, \"bench:\" .. ngx.var.remote_addr, 0.00000001, 100000000)
                r:set_keepalive(10000, 64)
                if res and res[1] == 0 then return ngx.exit(429) end
            }"
    lua_modules="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
    write_nginx_config "$work/nginx-lua" "127.0.0.1:$lua_port" 64 "$lua_check" "$lua_modules" ""
    lua_pids=($(start_nginx "$work/nginx-lua" "$lua_port"))
    pids+=("${lua_pids[0]}")

    printf "%-10s %10s %9s %9s %12s %14s %14s\n" target "req/s" "p50 ms" "p99 ms" "cpu us/req" "redis us/check" "scripts/req"
    measure_with_redis gateway "http://127.0.0.1:$gateway_port/bench" "$gateway_pid"
    measure_with_redis nginx-lua "http://127.0.0.1:$lua_port/bench" "${lua_pids[@]}"
    check=$(curl -s -o /dev/null -w '%{http_code} %header{x-ratelimit-limit}' "http://127.0.0.1:$gateway_port/bench")
    echo "gateway answer check: $check"
    awk -v gc="$gateway_cpu" -v nc="$nginx_lua_cpu" -v gr="$gateway_redis" -v nr="$nginx_lua_redis" -v gp="$gateway_p99" -v np="$nginx_lua_p99" 'BEGIN {
        printf "ratios gateway/nginx-lua: cpu per request %.2fx (target <= 1.0x), redis cpu per check %.2fx (target <= 0.6x), p99 %.2fx (target <= 1.0x)\n", gc / nc, gr / nr, gp / np
    }'
fi

if [[ " $scenarios " == *" fault "* ]]; then
    echo
    echo "== fault: the public (fail-open) route with Redis healthy, then hung =="
    stop_gateway
    start_gateway "$work/gateway-redis.toml" "$gateway_port"
    measure_header
    measure healthy "http://127.0.0.1:$gateway_port/bench" "$gateway_pid"
    kill -STOP "$redis_pid"
    # Enough requests to open the breaker (5 failures at 100 ms each), then measure.
    for _ in 1 2 3 4 5 6; do curl -s -o /dev/null "http://127.0.0.1:$gateway_port/bench"; done
    measure hung "http://127.0.0.1:$gateway_port/bench" "$gateway_pid"
    kill -CONT "$redis_pid"
    awk -v h="$healthy_p99" -v s="$hung_p99" 'BEGIN {
        printf "ratio hung/healthy p99: %.2fx (target <= 2.0x)\n", s / h
    }'
fi

if [[ " $scenarios " == *" h2 "* ]]; then
    echo
    echo "== h2: HTTP/2 over TLS (h2load -c 8 -m 16) =="
    stop_gateway
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=localhost' \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
    cat "$work/gateway.toml" >"$work/gateway-h2.toml"
    printf '[server.tls]\ncert = "%s"\nkey = "%s"\n' "$work/tls.pem" "$work/tls.key" >>"$work/gateway-h2.toml"
    start_gateway "$work/gateway-h2.toml" "$gateway_port"

    h2_port=$(free_port)
    # keepalive 256 matches the gateway's idle pool; keepalive_requests lifts nginx's default of
    # 1000 requests per HTTP/2 connection, which h2load would count as errors.
    write_nginx_config "$work/nginx-h2" "127.0.0.1:$h2_port ssl http2" 256 "" "" \
        "ssl_certificate $work/tls.pem; ssl_certificate_key $work/tls.key; keepalive_requests 100000000;"
    h2_pids=($(start_nginx "$work/nginx-h2" "$h2_port"))
    pids+=("${h2_pids[0]}")

    # h2load for a fixed time; prints "requests rps".
    run_h2load() {
        local out
        out=$(taskset -c "$load_core" h2load -c 8 -m 16 -n $((duration * 12000)) "$1" 2>&1)
        local done rps
        done=$(awk '/^requests:/ {print $8}' <<<"$out")
        rps=$(awk '/^finished in/ {print $4}' <<<"$out")
        echo "$done $rps"
        grep -E "^requests:|^status codes:" <<<"$out" >&2
    }
    measure_h2() {
        local name=$1 url=$2
        shift 2
        local before after done rps cpu_us
        before=$(cpu_ticks "$@")
        read -r done rps < <(run_h2load "$url")
        after=$(cpu_ticks "$@")
        cpu_us=$(us_per_request $((after - before)) "$done")
        printf "%-8s %10s %12s\n" "$name" "$rps" "$cpu_us"
        eval "${name}_h2_cpu=$cpu_us"
    }
    printf "%-8s %10s %12s\n" target "req/s" "cpu us/req"
    measure_rounds measure_h2 h2_cpu "https://127.0.0.1:$gateway_port/bench" "https://127.0.0.1:$h2_port/bench" "${h2_pids[@]}"
    echo "ratio gateway/nginx: cpu per request $(cpu_ratio_text) (target <= 1.3x)"
fi

if [[ " $scenarios " == *" identity "* ]]; then
    echo
    echo "== identity: client_ip against jwt:sub (RS256, token seen before) =="
    stop_gateway
    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    openssl genrsa -out "$work/jwt.key" 2048 2>/dev/null
    modulus=$(openssl rsa -in "$work/jwt.key" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
    printf '{"keys":[{"kty":"RSA","kid":"bench","n":"%s","e":"AQAB"}]}' "$modulus" >"$work/jwks.json"
    header=$(printf '{"alg":"RS256","kid":"bench","typ":"JWT"}' | b64url)
    payload=$(printf '{"sub":"bench-user","exp":%d}' $(($(date +%s) + 3600)) | b64url)
    signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$work/jwt.key" | b64url)
    token="$header.$payload.$signature"
    sed 's|^path_prefix = "/"|path_prefix = "/plain"|' "$work/gateway.toml" >"$work/gateway-identity.toml"
    cat >>"$work/gateway-identity.toml" <<TOML
[jwt]
algorithms = ["RS256"]
jwks_file = "$work/jwks.json"
[[routes]]
name = "token"
path_prefix = "/token"
upstream = "app"
limiters = ["bench"]
identifier = "jwt:sub"
on_missing = "reject"
TOML
    start_gateway "$work/gateway-identity.toml" "$gateway_port"
    echo "token check: $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$gateway_port/token") (without: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gateway_port/token"))"
    measure_header
    measure client "http://127.0.0.1:$gateway_port/plain" "$gateway_pid"
    wrk_headers=(-H "Authorization: Bearer $token")
    measure jwt "http://127.0.0.1:$gateway_port/token" "$gateway_pid"
    wrk_headers=()
    awk -v j="$jwt_cpu" -v c="$client_cpu" 'BEGIN { printf "jwt:sub / client_ip: cpu per request %.2fx\n", j / c }'
fi

if [[ " $scenarios " == *" cluster "* ]]; then
    echo
    echo "== cluster: standalone Redis against a three-primary Redis Cluster, identifiers spread =="
    stop_gateway
    cluster_ports=()
    cluster_pids=()
    # A cluster node's bus port is its port + 10000.
    while ((${#cluster_ports[@]} < 3)); do
        port=$(free_port)
        ((port + 10000 <= 65535)) && ! ss -ltn | grep -q ":$((port + 10000)) " && cluster_ports+=("$port")
    done
    for port in "${cluster_ports[@]}"; do
        mkdir -p "$work/cluster-$port"
        taskset -c "$load_core" redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
            --dir "$work/cluster-$port" --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null 2>&1 &
        cluster_pids+=($!)
        pids+=($!)
    done
    for port in "${cluster_ports[@]}"; do wait_for_port "$port"; done
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-yes >/dev/null
    until redis-cli -p "${cluster_ports[0]}" CLUSTER INFO | grep -q cluster_state:ok; do sleep 0.2; done

    cat >"$work/spread.lua" <<'LUA'
request = function()
    return wrk.format("GET", "/bench?u=" .. math.random(1, 100000))
end
LUA
    sed 's|^identifier = "client_ip"|identifier = "query:u"|' "$work/gateway-redis.toml" >"$work/gateway-spread.toml"
    cat >"$work/rate-sync-cluster.toml" <<TOML
[stores.redis]
engine = "redis"
mode = "cluster"
nodes = [$(printf '"127.0.0.1:%s",' "${cluster_ports[@]}")]
[limiters.bench]
store = "redis"
rate_per_second = 100000000
TOML
    sed "s|rate-sync-redis.toml|rate-sync-cluster.toml|" "$work/gateway-spread.toml" >"$work/gateway-cluster.toml"

    # Like measure, also reporting the CPU per request of the given Redis pids.
    measure_spread() {
        local name=$1 url=$2
        shift 2
        local redis_pids=("$@")
        taskset -c "$load_core" wrk -t1 -c"$connections" -d2s -s "$work/spread.lua" "$url" >/dev/null
        local before after redis_before redis_after requests rps p50 p99 cpu_us redis_us calls_before=0 calls_after=0 port
        before=$(cpu_ticks "$gateway_pid")
        redis_before=$(cpu_ticks "${redis_pids[@]}")
        for port in "${spread_ports[@]}"; do calls_before=$((calls_before + $(script_calls "$port"))); done
        wrk_headers=(-s "$work/spread.lua")
        read -r requests rps p50 p99 < <(run_wrk "$url")
        wrk_headers=()
        after=$(cpu_ticks "$gateway_pid")
        redis_after=$(cpu_ticks "${redis_pids[@]}")
        for port in "${spread_ports[@]}"; do calls_after=$((calls_after + $(script_calls "$port"))); done
        cpu_us=$(us_per_request $((after - before)) "$requests")
        redis_us=$(us_per_request $((redis_after - redis_before)) "$requests")
        calls=$(awk -v c=$((calls_after - calls_before)) -v n="$requests" 'BEGIN { printf "%.3f", c / n }')
        printf "%-10s %10s %9s %9s %12s %14s %11s\n" "$name" "$rps" "$p50" "$p99" "$cpu_us" "$redis_us" "$calls"
        eval "${name}_cpu=$cpu_us ${name}_redis=$redis_us"
    }
    printf "%-10s %10s %9s %9s %12s %14s %11s\n" target "req/s" "p50 ms" "p99 ms" "cpu us/req" "redis us/check" "calls/req"
    # Rounds of standalone and cluster alternating, so that the machine's drift over a
    # minute weighs on both; the ratios are the medians of the rounds'.
    shard_before=()
    for pid in "${cluster_pids[@]}"; do shard_before+=("$(cpu_ticks "$pid")"); done
    gateway_ratios=()
    redis_ratios=()
    cluster_rounds=$((rounds > 3 ? rounds : 3))
    for ((round = 1; round <= cluster_rounds; round++)); do
        start_gateway "$work/gateway-spread.toml" "$gateway_port"
        spread_ports=("$redis_port")
        measure_spread standalone "http://127.0.0.1:$gateway_port/bench" "$redis_pid"
        stop_gateway
        start_gateway "$work/gateway-cluster.toml" "$gateway_port"
        spread_ports=("${cluster_ports[@]}")
        measure_spread cluster "http://127.0.0.1:$gateway_port/bench" "${cluster_pids[@]}"
        gateway_ratios+=("$(ratio "$cluster_cpu" "$standalone_cpu")")
        redis_ratios+=("$(ratio "$cluster_redis" "$standalone_redis")")
        ((round < cluster_rounds)) && stop_gateway
    done
    echo "gateway answer check: $(curl -s -o /dev/null -w '%{http_code} %header{x-ratelimit-limit}' "http://127.0.0.1:$gateway_port/bench?u=1")"
    echo "cluster decisions: $(curl -s "http://127.0.0.1:$admin_port/metrics" | grep '^ratesync_decisions_total' | sed 's/.*outcome="\([a-z_]*\)".* /\1=/' | tr '\n' ' ')"
    echo "keys on the shards: $(for port in "${cluster_ports[@]}"; do redis-cli -p "$port" DBSIZE; done | tr '\n' ' ')"
    shares=""
    total=0
    for i in "${!cluster_pids[@]}"; do
        used=$(($(cpu_ticks "${cluster_pids[$i]}") - shard_before[i]))
        total=$((total + used))
        shares+=" $used"
    done
    echo "CPU ticks per shard over the cluster runs (warm-up included):$shares (total $total)"
    echo "cluster/standalone per round: gateway cpu per request ${gateway_ratios[*]}, redis cpu per check ${redis_ratios[*]}"
    echo "cluster/standalone, medians: gateway cpu per request $(median "${gateway_ratios[@]}")x (target <= 1.10x), redis cpu per check $(median "${redis_ratios[@]}")x (summed over the shards)"

    # wrk saturates the load core, which the cluster's three shards share with it: the cluster
    # mode then gets fewer requests per second, so fewer per event-loop wake-up and per script
    # call, and each costs more for that alone. The same comparison at one offered rate for both
    # (h2load --rps, below both modes' saturation) measures what the mode itself costs.
    spread_rate=${BENCH_SPREAD_RATE:-20000}
    awk 'BEGIN { srand(7); for (i = 0; i < 100000; i++) printf "/bench?u=%d\n", int(rand() * 100000) + 1 }' |
        sed "s|^|http://127.0.0.1:$gateway_port|" >"$work/spread-uris.txt"
    measure_rate() {
        local name=$1
        local before after out done_requests cpu_us
        taskset -c "$load_core" h2load --h1 -t1 -c"$connections" -D 2 --rps $((spread_rate / connections)) -i "$work/spread-uris.txt" >/dev/null
        before=$(cpu_ticks "$gateway_pid")
        out=$(taskset -c "$load_core" h2load --h1 -t1 -c"$connections" -D "$duration" --rps $((spread_rate / connections)) -i "$work/spread-uris.txt")
        after=$(cpu_ticks "$gateway_pid")
        done_requests=$(awk '/^requests:/ {print $8}' <<<"$out")
        cpu_us=$(us_per_request $((after - before)) "$done_requests")
        printf "%-10s %10s %12s\n" "$name" "$done_requests" "$cpu_us"
        eval "${name}_cpu=$cpu_us"
    }
    echo
    echo "the same at one offered rate, $spread_rate requests/s (h2load --rps):"
    printf "%-10s %10s %12s\n" target "succeeded" "cpu us/req"
    rate_ratios=()
    for ((round = 1; round <= cluster_rounds; round++)); do
        stop_gateway
        start_gateway "$work/gateway-spread.toml" "$gateway_port"
        measure_rate standalone
        stop_gateway
        start_gateway "$work/gateway-cluster.toml" "$gateway_port"
        measure_rate cluster
        rate_ratios+=("$(ratio "$cluster_cpu" "$standalone_cpu")")
    done
    echo "cluster/standalone at one rate, per round: gateway cpu per request ${rate_ratios[*]}; median $(median "${rate_ratios[@]}")x (target <= 1.10x)"
fi
