#!/usr/bin/env bash
# Fails (non-zero) unless PostgreSQL, Redis and libvirtd answer. Used by the test set-up.
set -uo pipefail
ok=1
pg_isready -q -h "${PGHOST:-localhost}" -p "${DESKPOOL_PG_PORT:-5432}" || { echo "PostgreSQL is not answering" >&2; ok=0; }
redis-cli -p "${DESKPOOL_REDIS_PORT:-6379}" ping >/dev/null 2>&1 || { echo "Redis is not answering" >&2; ok=0; }
if [[ "${DESKPOOL_SKIP_LIBVIRT:-0}" != 1 ]]; then
  virsh -c qemu:///system version >/dev/null 2>&1 || { echo "libvirtd is not answering" >&2; ok=0; }
fi
((ok))
