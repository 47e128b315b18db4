#!/usr/bin/env bash
# Proves docker/Dockerfile's runtime stage without a Docker engine (none runs on the machines this
# project is built on):
#   1. builds the binaries as the build stage does (release, --static-swift-stdlib, static hiredis,
#      stripped) and checks with ldd that they need nothing beyond glibc, libstdc++ and libgcc;
#   2. makes a minimal Debian bookworm root with `debootstrap --variant=minbase` plus exactly the
#      packages the runtime stage installs, and the runtime stage's user (uid 10001);
#   3. copies the binaries, the health check and the config files in where the Dockerfile puts
#      them, and runs, inside the root (chroot) as that user: `ratesync-gateway check`, then the
#      demo upstream and the gateway, against a redis-server on loopback: one request answered
#      200, the auth route limited to 429 after its 10, and the image's HEALTHCHECK command.
# The root is cached under .build-docker (git ignores it); the binaries are built there too, so a
# `swift test` running meanwhile in .build is not waited for.
#
# Usage: scripts/docker-runtime-check.sh   (as root: debootstrap, chroot and mount need it)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

say() { echo "docker-runtime-check: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, chroot, mount)"
scripts/setup.sh
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

scratch=.build-docker
# The build stage's SWIFT_FLAGS (lib.sh reads them from the Dockerfile).
flags=$release_flags
say "building with $flags"
swift build --scratch-path "$scratch" $flags --product ratesync-gateway >/dev/null
swift build --scratch-path "$scratch" $flags --product ratesync-demo-upstream >/dev/null
bin=$(swift build --scratch-path "$scratch" $flags --show-bin-path)

allowed='linux-vdso|ld-linux|/libc\.so|/libm\.so|/libpthread|/libdl\.|/librt\.|/libutil|/libstdc\+\+|/libgcc_s'
for binary in ratesync-gateway ratesync-demo-upstream; do
    unexpected=$(ldd "$bin/$binary" | grep -vE "$allowed" || true)
    [[ -z "$unexpected" ]] || fail "$binary links more than glibc, libstdc++ and libgcc: $unexpected"
done
say "ldd: only glibc, libstdc++ and libgcc"

# The runtime stage's packages, read from the Dockerfile (the apt-get line after the last FROM).
packages=$(awk '/^FROM /{runtime=($2 ~ /^debian:/)} runtime' docker/Dockerfile |
    sed -nE 's/.*apt-get install -y --no-install-recommends ([a-z0-9. +-]+).*/\1/p' | tr -s ' ' ',' | sed 's/,$//')
suite=$(awk '/^FROM debian:/ {print $2}' docker/Dockerfile | sed -E 's/debian:([a-z]+).*/\1/')
root=$scratch/runtime-root-$suite-${packages//,/-}
if [[ ! -f "$root/.complete" ]]; then
    rm -rf "$root"
    say "debootstrap --variant=minbase $suite, with: $packages"
    debootstrap --variant=minbase ${packages:+--include="$packages"} "$suite" "$root" http://deb.debian.org/debian >"$scratch/debootstrap.log" 2>&1 ||
        fail "debootstrap (see $scratch/debootstrap.log)"
    chroot "$root" useradd --system --no-create-home --uid 10001 gateway
    touch "$root/.complete"
fi

# What the Dockerfile's COPY lines put in the image.
install -m 0755 "$bin/ratesync-gateway" "$bin/ratesync-demo-upstream" "$root/usr/local/bin/"
strip "$root/usr/local/bin/ratesync-gateway" "$root/usr/local/bin/ratesync-demo-upstream"
install -m 0755 docker/healthcheck.sh "$root/usr/local/bin/ratesync-healthcheck"
mkdir -p "$root/etc/ratesync"
install -m 0644 docker/gateway.toml rate-sync.toml "$root/etc/ratesync/"

pids=()
mounted=()
cleanup() {
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null; kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # Redis is no child of this shell (start_redis ran in a subshell): wait for it too, so that
    # nothing this script started outlives it (a caller may be waiting for its descriptors).
    local deadline=$((SECONDS + 10)) pid
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    done
    for mount in "${mounted[@]}"; do umount -l "$mount" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
# Swift reads its arguments from /proc/self/cmdline; /dev/null and /dev/urandom come from /dev.
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")

redis_port=$(free_port)
upstream_port=$(free_port)
gateway_port=$(free_port)
admin_port=$(free_port)
pids+=("$(start_redis "$redis_port" "$scratch/redis.log")")
wait_for_port "$redis_port"

# As the image's user, with the image's environment (plus the addresses of this run). An array,
# not a function: started in the background, its pid is the process itself (chroot execs env,
# which execs the binary), so the cleanup stops it and nothing outlives this script.
in_image=(chroot --userspec=10001:10001 "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/
    GATEWAY_PORT="$gateway_port" ADMIN_PORT="$admin_port"
    REDIS_URL="redis://127.0.0.1:$redis_port/0" UPSTREAM_URL="http://127.0.0.1:$upstream_port")

"${in_image[@]}" /usr/local/bin/ratesync-gateway check --config /etc/ratesync/gateway.toml || fail "ratesync-gateway check"
say "check: ok"
"${in_image[@]}" /usr/local/bin/ratesync-demo-upstream --port "$upstream_port" >"$scratch/upstream.log" 2>&1 &
pids+=($!)
wait_for_port "$upstream_port"
"${in_image[@]}" /usr/local/bin/ratesync-gateway --config /etc/ratesync/gateway.toml >"$scratch/gateway.log" 2>&1 &
pids+=($!)
wait_for_port "$gateway_port" || fail "the gateway did not listen: $(cat "$scratch/gateway.log")"

status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gateway_port/products")
[[ "$status" == 200 ]] || fail "GET /products answered $status"
say "GET /products: 200"
statuses=$(for _ in $(seq 11); do curl -s -o /dev/null -w '%{http_code} ' -X POST "http://127.0.0.1:$gateway_port/auth/login"; done)
[[ "$statuses" == "200 200 200 200 200 200 200 200 200 200 429 " ]] || fail "POST /auth/login x11 answered $statuses"
say "POST /auth/login x11: $statuses"
"${in_image[@]}" /usr/local/bin/ratesync-healthcheck || fail "the HEALTHCHECK command failed"
say "HEALTHCHECK: healthy"
kill -STOP "${pids[0]}"
if "${in_image[@]}" timeout 10 /usr/local/bin/ratesync-healthcheck; then
    kill -CONT "${pids[0]}"
    fail "the HEALTHCHECK command passed with Redis hung"
fi
kill -CONT "${pids[0]}"
say "HEALTHCHECK with Redis hung: unhealthy"
say "ok"
