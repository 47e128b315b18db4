#!/bin/bash
# The image's health check: GET /health/rate-limiter on the admin port through bash's /dev/tcp
# (the runtime image has bash, and no curl or wget). Healthy when the status line says 200, which
# the gateway answers only while every store it uses answers.
set -euo pipefail
exec 3<>"/dev/tcp/127.0.0.1/${ADMIN_PORT:-9901}"
printf 'GET /health/rate-limiter HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 3 status <&3
[[ "$status" == "HTTP/1.1 200 "* ]]
