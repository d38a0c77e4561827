#!/bin/bash
# Docker HEALTHCHECK of the clamav sidecar: healthy when clamd answers zPING with PONG.
# Uses bash's /dev/tcp, so the image needs no extra client package.
CLAMAV_ENABLED=${CLAMAV_ENABLED:-true}
case "${CLAMAV_ENABLED,,}" in false|no|off|0) exit 0 ;; esac  # disabled on purpose: nothing to check
port=$(awk '$1 == "TCPSocket" { print $2 }' /run/clamav/clamd.conf 2>/dev/null)
exec 3<>"/dev/tcp/127.0.0.1/${port:-3310}" || exit 1
printf 'zPING\0' >&3
IFS= read -r -t 5 -d '' reply <&3 || exit 1
[ "$reply" = PONG ]
