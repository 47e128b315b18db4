# Shared helpers for the scripts; sourced, not run.

# Release builds of the binaries, with the flags of the Docker image's build stage (its
# `SWIFT_FLAGS`, written once there, so that what is run and benchmarked is what ships): every
# module (SwiftNIO's too) without runtime exclusivity checks, which cost about 2.7% of a proxied
# request's CPU time in the profile (the event-loop design, not the runtime, keeps each object on
# one thread), and with whole cross-module optimisation, so that SwiftNIO's and our modules'
# small functions inline into their callers (what it saves and what it adds to a first build:
# the README's Benchmarks). Lexical lifetimes off: the optimiser may end an object's life at its
# last use instead of its scope's end (Swift's rule before 5.7), which drops retains and
# releases, atomic each, on the request path; no code here keeps an object alive only by a local
# it no longer reads (weak references point at objects owned elsewhere). Large structs and enums
# kept in registers, not lowered to memory (`-disable-large-loadable-types-reg2mem`): lowered,
# their copies went through outlined functions that called the runtime's generic value
# witnesses (an optional's copy and destruction, a payload's tuple) several times per request.
# The Swift runtime linked in statically: its retains and releases, several hundred per request,
# are then direct calls rather than calls through the dynamic linker's table. No frame pointers
# (as nginx, built with gcc -O2): two or three instructions and a register less per call;
# `perf record --call-graph dwarf` still walks the stacks.
release_flags=$(sed -nE 's/^ARG SWIFT_FLAGS="(.*)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../docker/Dockerfile")
[[ -n "$release_flags" ]] || { echo "lib.sh: no SWIFT_FLAGS in docker/Dockerfile" >&2; exit 1; }

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Waits until something accepts connections on 127.0.0.1:$1 (up to $2 seconds, default 20).
wait_for_port() {
    local port=$1 deadline=$((SECONDS + ${2:-20}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "nothing listens on port $port" >&2; return 1; }
        sleep 0.1
    done
}

# Starts a throwaway redis-server (no persistence) on 127.0.0.1:$1, logging to $2.
start_redis() {
    local port=$1 log=$2
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no \
        >"$log" 2>&1 &
    echo $!
}

# Prints the path of a Python 3.12 or later (plain, or one of pyenv's), or fails.
find_python312() {
    local candidate
    for candidate in python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
        [[ -x "$candidate" ]] && { echo "$candidate"; return 0; }
    done
    return 1
}

# Starts the leanest upstream there is, nginx answering `return 200` itself in one write (one
# worker, no log), on 127.0.0.1:$1 with its files in $2; $3: a CPU core to pin it to (optional).
# Prints its master's and worker's pids.
start_lean_upstream() {
    local port=$1 dir=$2 core=${3:-}
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$port; location / { return 200 "ok"; } }
}
NGINX
    if [[ -n "$core" ]]; then
        taskset -c "$core" nginx -p "$dir" -c "$dir/nginx.conf" >/dev/null 2>&1 &
    else
        nginx -p "$dir" -c "$dir/nginx.conf" >/dev/null 2>&1 &
    fi
    local master=$!
    wait_for_port "$port" >&2
    echo "$master" $(pgrep -P "$master")
}

# Writes the benchmarks' gateway configuration into $1: rate-sync.toml, a memory limiter that
# admits everything, and gateway.toml, one worker listening on 127.0.0.1:$2 (admin $3) that
# routes every path to the upstream on 127.0.0.1:$4 through that limiter, keyed on the client's
# address; the access log to $1/access.log when $5 is true (default false; metrics stay on).
write_bench_gateway_config() {
    local dir=$1 port=$2 admin=$3 upstream=$4 log=${5:-false}
    cat >"$dir/rate-sync.toml" <<TOML
[stores.local]
engine = "memory"
[limiters.bench]
store = "local"
rate_per_second = 100000000
TOML
    cat >"$dir/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
workers = 1
[admin]
listen = "127.0.0.1:$admin"
[upstreams.app]
url = "http://127.0.0.1:$upstream"
[[routes]]
name = "bench"
path_prefix = "/"
upstream = "app"
limiters = ["bench"]
identifier = "client_ip"
[access_log]
enabled = $log
TOML
    if [[ "$log" == true ]]; then
        echo "path = \"$dir/access.log\"" >>"$dir/gateway.toml"
    fi
}
