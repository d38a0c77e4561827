#!/bin/bash
# Docker HEALTHCHECK of the spamassassin sidecar: healthy when spamd answers the SPAMC
# PING with "SPAMD/1.5 0 PONG". Uses bash's /dev/tcp: no client package needed.
exec 3<>"/dev/tcp/127.0.0.1/${SPAMD_PORT:-783}" || exit 1
printf 'PING SPAMC/1.5\r\n\r\n' >&3
IFS= read -r -t 5 line <&3 || exit 1
[[ "$line" == "SPAMD/1.5 0 PONG"* ]]
