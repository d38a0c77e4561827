#!/bin/bash
# Entrypoint of the Facteur spamassassin sidecar: update the rules when the network allows,
# then exec spamd in the foreground (as debian-spamd, logging to stderr).
#
# Environment (all optional):
#   SPAMD_PORT              TCP port spamd listens on, on all IPv4 interfaces (default 783)
#   SPAMD_ALLOWED_IPS       comma-separated addresses/CIDRs allowed to connect
#                           (default 0.0.0.0/0: spamd is reachable on the internal network only;
#                           127.0.0.1 is always added for the healthcheck)
#   SPAMD_MAX_CHILDREN      spamd worker processes (default 5; ~60-100 MB each)
#   SPAMD_TRUSTED_NETWORKS  SpamAssassin trusted_networks besides loopback (CIDRs, commas or spaces;
#                           default: TRUSTED_NETWORKS, the MX's own LAN). Never SA's inference,
#                           which trusts every private address: the Docker bridge gateway, which
#                           every client of Docker's userland proxy comes from, would make all
#                           their mail ALL_TRUSTED (-1.0) with no network test on its relay.
#   SPAMD_REPORT_CONTACT    address shown in SpamAssassin's reports (e.g. the postmaster's)
#   SPAMD_NETWORK_TESTS     auto|yes|no: DNS blocklists, Razor, Pyzor (default auto: on when a
#                           5 s DNS probe succeeds at start, else spamd runs with --local)
#   SA_UPDATE_ON_START      yes|no  run sa-update before spamd starts (default yes; skipped
#                           when the network tests are off)
#   SA_UPDATE_TIMEOUT       seconds bound on each sa-update run (default 60)
#   SA_UPDATE_INTERVAL_HOURS  hours between background sa-update runs, followed by a reload
#                           of spamd when rules changed (default 24; 0 = never; only with network)
set -uo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SPAMD_PORT=${SPAMD_PORT:-783}
SPAMD_ALLOWED_IPS=${SPAMD_ALLOWED_IPS:-0.0.0.0/0}
SPAMD_MAX_CHILDREN=${SPAMD_MAX_CHILDREN:-5}
SPAMD_TRUSTED_NETWORKS=${SPAMD_TRUSTED_NETWORKS:-${TRUSTED_NETWORKS:-}}
SPAMD_REPORT_CONTACT=${SPAMD_REPORT_CONTACT:-}
SPAMD_NETWORK_TESTS=${SPAMD_NETWORK_TESTS:-auto}
SA_UPDATE_ON_START=${SA_UPDATE_ON_START:-yes}
SA_UPDATE_TIMEOUT=${SA_UPDATE_TIMEOUT:-60}
SA_UPDATE_INTERVAL_HOURS=${SA_UPDATE_INTERVAL_HOURS:-24}

[[ "$SPAMD_PORT" =~ ^[1-9][0-9]{0,4}$ ]] && (( SPAMD_PORT <= 65535 )) \
  || die "SPAMD_PORT must be a TCP port number (1-65535), got '$SPAMD_PORT'"
[[ "$SPAMD_ALLOWED_IPS" =~ ^[0-9A-Fa-f.:/,]+$ ]] \
  || die "SPAMD_ALLOWED_IPS must be comma-separated IP addresses or CIDRs, got '$SPAMD_ALLOWED_IPS'"
[[ "$SPAMD_MAX_CHILDREN" =~ ^[1-9][0-9]?$ ]] \
  || die "SPAMD_MAX_CHILDREN must be a number from 1 to 99, got '$SPAMD_MAX_CHILDREN'"
[[ "$SPAMD_TRUSTED_NETWORKS" =~ ^[0-9A-Fa-f.:/\ !]*$ ]] \
  || die "SPAMD_TRUSTED_NETWORKS must be space-separated IP addresses or CIDRs, got '$SPAMD_TRUSTED_NETWORKS'"
[[ "$SPAMD_REPORT_CONTACT" =~ ^[^[:space:][:cntrl:]]*$ ]] \
  || die "SPAMD_REPORT_CONTACT must be an e-mail address or URL without spaces, got '$SPAMD_REPORT_CONTACT'"
case "$SPAMD_NETWORK_TESTS" in auto|yes|no) ;; *) die "SPAMD_NETWORK_TESTS must be auto, yes or no, got '$SPAMD_NETWORK_TESTS'";; esac
case "$SA_UPDATE_ON_START" in yes|no) ;; *) die "SA_UPDATE_ON_START must be yes or no, got '$SA_UPDATE_ON_START'";; esac
[[ "$SA_UPDATE_TIMEOUT" =~ ^[1-9][0-9]{0,4}$ ]] \
  || die "SA_UPDATE_TIMEOUT must be a number of seconds (1-99999), got '$SA_UPDATE_TIMEOUT'"
[[ "$SA_UPDATE_INTERVAL_HOURS" =~ ^[0-9]{1,4}$ ]] \
  || die "SA_UPDATE_INTERVAL_HOURS must be a number of hours (0 = never), got '$SA_UPDATE_INTERVAL_HOURS'"

# A non-root process binds a port below 1024 only where the runtime lowers this sysctl
# (Docker >= 20.10 sets it to 0 in every container it starts).
if (( $(id -u) != 0 && SPAMD_PORT < $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024) )); then
  die "spamd runs as $(id -un) and cannot bind port $SPAMD_PORT: set the container sysctl" \
      "net.ipv4.ip_unprivileged_port_start=0 (Docker >= 20.10 does it by default) or SPAMD_PORT above 1023"
fi

[ -w /var/lib/spamassassin ] \
  || die "/var/lib/spamassassin must be writable by $(id -un) (uid $(id -u)); chown the volume"

# Network probe: without DNS every network test would wait for its timeout on every message.
network=$SPAMD_NETWORK_TESTS
if [ "$network" = auto ]; then
  if timeout 5 getent hosts updates.spamassassin.org >/dev/null 2>&1; then
    network=yes
  else
    network=no
    log "WARNING: DNS does not answer (no network?): spamd runs local tests only" \
        "(no DNS blocklists, Razor, Pyzor; set SPAMD_NETWORK_TESTS=yes to force them)"
  fi
fi

sa_update() {
  # Exit codes: 0 new rules installed, 1 no new rules, other values are failures.
  timeout --kill-after=5 "$SA_UPDATE_TIMEOUT" \
    sa-update --gpghomedir /var/lib/spamassassin/sa-update-keys
}

# SpamAssassin reads its rules from this directory as soon as it exists (sa-update's), else
# from /usr/share/spamassassin (the package's).
update_dir=/var/lib/spamassassin/$(perl -MMail::SpamAssassin -e 'print $Mail::SpamAssassin::VERSION')
update_ok=no
if [ "$network" = yes ] && [ "$SA_UPDATE_ON_START" = yes ]; then
  log "updating rules (sa-update, at most ${SA_UPDATE_TIMEOUT}s)"
  sa_update; rc=$?
  case $rc in
    0) update_ok=yes; log "sa-update: new rules installed" ;;
    1) update_ok=yes; log "sa-update: rules already up to date" ;;
    124|137) log "WARNING: sa-update timed out; going on with the rules installed" ;;
    *) log "WARNING: sa-update failed (exit $rc); going on with the rules installed" ;;
  esac
fi
# sa-update creates the directory before it downloads anything: an interrupted or failed run
# (here, or in an earlier life of the volume) can leave it empty or half-written, and spamd
# would then start with no rules at all. Set such a directory aside.
if [ -d "$update_dir" ] && [ "$update_ok" = no ]; then
  if [ -z "$(find "$update_dir" -type f -print -quit)" ]; then
    rm -rf "$update_dir"
  elif [ ! -f "$update_dir/updates_spamassassin_org.cf" ] || ! spamassassin --lint >/dev/null 2>&1; then
    rm -rf "$update_dir.broken" && mv "$update_dir" "$update_dir.broken"
    log "WARNING: incomplete or broken rule update moved to $update_dir.broken"
  fi
fi
if [ -f "$update_dir/updates_spamassassin_org.cf" ]; then
  log "rules: from sa-update in $update_dir"
else
  log "rules: as shipped by the Debian package in /usr/share/spamassassin"
fi

args=(
  --listen="0.0.0.0:$SPAMD_PORT"
  --allowed-ips="127.0.0.1,$SPAMD_ALLOWED_IPS"
  --max-children="$SPAMD_MAX_CHILDREN"
  --syslog=stderr
  # Not root: spamd cannot switch to the user spamc names; use one set of preferences,
  # one Bayes database and the Razor/Pyzor homes in the (volume) home directory.
  --nouser-config
  --helper-home-dir=/var/lib/spamassassin
)
[ "$network" = no ] && args+=(--local)
args+=(--cf="trusted_networks 127.0.0.0/8 ::1 ${SPAMD_TRUSTED_NETWORKS//,/ }")
[ -n "$SPAMD_REPORT_CONTACT" ] && args+=(--cf="report_contact $SPAMD_REPORT_CONTACT")

# Background rule updates. This shell is replaced by spamd below (same PID, $$), so the loop
# signals spamd with SIGHUP to reload the rules after an update.
if [ "$network" = yes ] && (( SA_UPDATE_INTERVAL_HOURS > 0 )); then
  spamd_pid=$$
  (
    while sleep $(( SA_UPDATE_INTERVAL_HOURS * 3600 )); do
      sa_update && kill -HUP "$spamd_pid"
    done
  ) &
fi

log "starting spamd on 0.0.0.0:$SPAMD_PORT (network tests: $network)"
exec spamd "${args[@]}"
