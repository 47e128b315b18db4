#!/usr/bin/env bash
# Installs the Debian packages the gateway, its tests and its benchmark need, if any is missing.
# Safe to run again: it only calls apt-get when something is absent.
set -euo pipefail

packages=(libhiredis-dev redis-server postgresql curl wrk openssl python3 nghttp2-client debootstrap)
if [[ "${1:-}" == "--bench" ]]; then
    packages+=(nginx-light libnginx-mod-http-lua lua-nginx-redis util-linux)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
    echo "setup: swift is not on PATH (Swift 6.x is required: https://swift.org/install)" >&2
    exit 1
fi
