#!/usr/bin/env bash
# Makes sure the services deskpool's tests and demo need are installed and running on this
# machine: PostgreSQL, Redis, and (unless DESKPOOL_SKIP_LIBVIRT=1) libvirtd + virtlogd with QEMU.
# Idempotent: safe to run on a fresh Debian machine (as root, installs packages) and again on
# one where everything already runs. Works without systemd.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[services] %s\n' "$*"; }

PG_USER="${DESKPOOL_PG_USER:-deskpool}"
PG_PASSWORD="${DESKPOOL_PG_PASSWORD:-deskpool}"
PG_PORT="${DESKPOOL_PG_PORT:-5432}"
REDIS_PORT="${DESKPOOL_REDIS_PORT:-6379}"

# chromium (+ a font): the dashboard's browser test drives Debian's chromium with playwright-core.
apt_packages=(postgresql redis-server chromium fonts-dejavu-core)
if [[ "${DESKPOOL_SKIP_LIBVIRT:-0}" != 1 ]]; then
  apt_packages+=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils openssh-server
                 openssh-client busybox-static iproute2 cpio kmod zstd)
fi

# The test guest (guest/build.sh) fetches Debian packages with `apt-get download`, which needs
# a package index even when every service is already installed.
if [[ $EUID -eq 0 ]] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  log "no apt package index yet: apt-get update"
  apt-get update -qq
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; run this script as root (or install them) and retry" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL -----------------------------------------------------------------------------
pg_version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$pg_version main$"; then
  log "creating PostgreSQL $pg_version cluster"
  pg_createcluster "$pg_version" main --port "$PG_PORT" >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  log "starting PostgreSQL $pg_version"
  pg_ctlcluster "$pg_version" main start
fi
for _ in $(seq 1 50); do
  su postgres -c "pg_isready -q -p $PG_PORT" && break
  sleep 0.2
done
psql_admin() { su postgres -c "psql -p $PG_PORT -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [[ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != 1 ]]; then
  log "creating role $PG_USER"
  psql_admin "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
fi
for db in deskpool deskpool_test; do
  if [[ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$db'")" != 1 ]]; then
    log "creating database $db"
    psql_admin "CREATE DATABASE $db OWNER $PG_USER"
  fi
done

# --- Redis ----------------------------------------------------------------------------------
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting Redis on port $REDIS_PORT"
  mkdir -p /var/lib/redis-deskpool
  # Append-only persistence so a Redis restart loses nothing that was acknowledged.
  redis-server --port "$REDIS_PORT" --daemonize yes --dir /var/lib/redis-deskpool \
    --appendonly yes --maxmemory-policy noeviction --save '' \
    --logfile /var/log/redis-deskpool.log
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- libvirt --------------------------------------------------------------------------------
if [[ "${DESKPOOL_SKIP_LIBVIRT:-0}" != 1 ]]; then
  bash "$here/libvirt.sh"
fi

log "ready: postgresql://$PG_USER:***@localhost:$PG_PORT/deskpool_test, redis://localhost:$REDIS_PORT"
