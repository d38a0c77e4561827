#!/bin/bash
# Entrypoint of the Facteur clamav sidecar: prepare the configuration and the signature
# database, then exec clamd in the foreground (it becomes PID 1's program: `init: true` in
# compose reaps the background freshclam cleanly).
#
# Environment (all optional):
#   FRESHCLAM_ON_START   yes|no  run freshclam once before clamd starts (default yes)
#   FRESHCLAM_TIMEOUT    seconds bound on that run (default 60); on timeout or failure clamd
#                        starts with whatever database the volume holds
#   FRESHCLAM_CHECKS     database checks per day by a background freshclam daemon
#                        (default 12; 0 = no background updates). clamd reloads changed
#                        databases by itself (SelfCheck).
#   CLAMAV_ENABLED       false|no|off|0: start no clamd (no signatures, no memory), only stay
#                        up and healthy, for an appliance run without virus scanning (the
#                        filter reads the same variable and reports itself degraded)
#   CLAMD_CONF_<Option>=value      set/override a clamd.conf option (e.g. CLAMD_CONF_MaxThreads=4)
#   FRESHCLAM_CONF_<Option>=value  same for freshclam.conf (e.g. FRESHCLAM_CONF_PrivateMirror=...)
set -uo pipefail

DB_DIR=/var/lib/clamav
RUN_DIR=/run/clamav
FALLBACK=/usr/local/share/clamav/facteur-eicar-test.hdb
FALLBACK_NAME=facteur-eicar-test.hdb

log() { printf '%s [entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

CLAMAV_ENABLED=${CLAMAV_ENABLED:-true}
case "${CLAMAV_ENABLED,,}" in
  false|no|off|0)
    log "CLAMAV_ENABLED=$CLAMAV_ENABLED: clamd is not started (no virus scanning)"
    exec sleep infinity ;;
esac

FRESHCLAM_ON_START=${FRESHCLAM_ON_START:-yes}
FRESHCLAM_TIMEOUT=${FRESHCLAM_TIMEOUT:-60}
FRESHCLAM_CHECKS=${FRESHCLAM_CHECKS:-12}
case "$FRESHCLAM_ON_START" in yes|no) ;; *) die "FRESHCLAM_ON_START must be yes or no, got '$FRESHCLAM_ON_START'";; esac
[[ "$FRESHCLAM_TIMEOUT" =~ ^[1-9][0-9]{0,4}$ ]] || die "FRESHCLAM_TIMEOUT must be a number of seconds (1-99999), got '$FRESHCLAM_TIMEOUT'"
[[ "$FRESHCLAM_CHECKS" =~ ^[0-9]{1,2}$ ]] && (( FRESHCLAM_CHECKS <= 50 )) \
  || die "FRESHCLAM_CHECKS must be 0-50 (checks per day), got '$FRESHCLAM_CHECKS'"

# render SRC DEST PREFIX: copy SRC to DEST, replacing each option named by a PREFIX<Option>
# environment variable with that variable's value.
render() {
  local src=$1 dest=$2 prefix=$3 var opt
  cp "$src" "$dest.tmp" || die "cannot write $dest (is $RUN_DIR writable by $(id -un)?)"
  while IFS= read -r var; do
    opt=${var#"$prefix"}
    [[ "$opt" =~ ^[A-Za-z][A-Za-z0-9]*$ ]] || die "$var: not a valid option name"
    sed -i "/^[[:space:]]*${opt}[[:space:]]/d" "$dest.tmp"
    printf '%s %s\n' "$opt" "${!var}" >> "$dest.tmp"
    log "$(basename "$dest"): $opt ${!var}"
  done < <(compgen -e | grep "^${prefix}" || true)
  mv "$dest.tmp" "$dest"
}

# Any ClamAV signature or database file (official .cvd/.cld, unofficial and local formats).
has_signatures() {
  find "$DB_DIR" -maxdepth 1 -type f ! -name "$FALLBACK_NAME" \( \
    -name '*.cvd' -o -name '*.cld' -o -name '*.cud' -o -name '*.cdb' -o -name '*.cbc' \
    -o -name '*.[hm]db' -o -name '*.[hm]sb' -o -name '*.[hm]du' -o -name '*.[hm]su' \
    -o -name '*.ndb' -o -name '*.ndu' -o -name '*.ldb' -o -name '*.ldu' -o -name '*.idb' \
    -o -name '*.pdb' -o -name '*.gdb' -o -name '*.wdb' -o -name '*.crb' -o -name '*.yar' \
    -o -name '*.yara' -o -name '*.sfp' -o -name '*.fp' -o -name '*.ign' -o -name '*.ign2' \
    \) -print -quit | grep -q .
}

mkdir -p "$RUN_DIR" 2>/dev/null
render /etc/clamav/clamd.conf "$RUN_DIR/clamd.conf" CLAMD_CONF_
render /etc/clamav/freshclam.conf "$RUN_DIR/freshclam.conf" FRESHCLAM_CONF_

[ -d "$DB_DIR" ] && [ -w "$DB_DIR" ] \
  || die "$DB_DIR must be a directory writable by $(id -un) (uid $(id -u)); chown the volume"

# freshclam works in tmp.* directories of the database directory: remove those a freshclam
# killed in an earlier life of the volume left behind (none runs yet).
find "$DB_DIR" -mindepth 1 -maxdepth 1 -type d -name 'tmp.*' -exec rm -rf {} + 2>/dev/null

# Quick probe first: offline, freshclam spends ~35 s on DNS and connect timeouts before giving
# up; a 5 s name lookup tells the same. The background daemon (if any) retries later anyway.
mirror=${FRESHCLAM_CONF_PrivateMirror:-${FRESHCLAM_CONF_DatabaseMirror:-database.clamav.net}}
mirror=${mirror#*://}; mirror=${mirror%%/*}; mirror=${mirror%:*}
if [ "$FRESHCLAM_ON_START" = yes ] && ! timeout 5 getent hosts "$mirror" >/dev/null 2>&1; then
  log "WARNING: cannot resolve $mirror (no network?): skipping the signature update at start"
  FRESHCLAM_ON_START=no
fi

if [ "$FRESHCLAM_ON_START" = yes ]; then
  log "updating signatures (freshclam, at most ${FRESHCLAM_TIMEOUT}s)"
  timeout --kill-after=5 "$FRESHCLAM_TIMEOUT" \
    freshclam --config-file="$RUN_DIR/freshclam.conf" --stdout
  rc=$?
  case $rc in
    0) log "freshclam: signatures up to date" ;;
    124|137) log "WARNING: freshclam timed out after ${FRESHCLAM_TIMEOUT}s; going on with the database in $DB_DIR" ;;
    *) log "WARNING: freshclam failed (exit $rc, no network?); going on with the database in $DB_DIR" ;;
  esac
fi

if has_signatures; then
  # A real database is there: the test-only fallback is no longer needed.
  rm -f "$DB_DIR/$FALLBACK_NAME"
else
  # clamd refuses to start with an empty database directory. Start with a one-line MD5
  # signature of the EICAR test file so the service (and its tests) work offline.
  cp "$FALLBACK" "$DB_DIR/$FALLBACK_NAME" || die "cannot write $DB_DIR/$FALLBACK_NAME"
  log "WARNING: no ClamAV signatures in $DB_DIR: running with a TEST-ONLY database that detects" \
      "nothing but the EICAR test file. Let freshclam reach database.clamav.net (or a mirror) or" \
      "mount a signature database."
fi

if (( FRESHCLAM_CHECKS > 0 )); then
  log "starting freshclam daemon ($FRESHCLAM_CHECKS checks a day)"
  freshclam --config-file="$RUN_DIR/freshclam.conf" --stdout --daemon --foreground \
    --checks="$FRESHCLAM_CHECKS" &
fi

log "starting clamd on TCP port $(awk '$1 == "TCPSocket" { print $2 }' "$RUN_DIR/clamd.conf")"
exec clamd --config-file="$RUN_DIR/clamd.conf"
