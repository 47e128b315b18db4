# Shared helpers for the scripts; sourced, not run.

# Release builds of the binaries: every module (SwiftNIO's too) without runtime exclusivity
# checks, which cost about 2.7% of a proxied request's CPU time in the profile. The event-loop
# design, not the runtime, keeps each object on one thread.
release_flags="-c release -Xswiftc -enforce-exclusivity=unchecked"

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
