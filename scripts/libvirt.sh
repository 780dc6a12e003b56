#!/usr/bin/env bash
# Starts virtlogd and libvirtd on a machine without systemd, idempotently (root only).
# QEMU runs as root with no security driver, which keeps file ownership simple on test machines.
set -euo pipefail
log() { printf '[libvirt] %s\n' "$*"; }
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt /var/cache/libvirt

conf=/etc/libvirt/qemu.conf
set_conf() { # key value
  if grep -qE "^\s*$1\s*=" "$conf"; then sed -i -E "s|^\s*$1\s*=.*|$1 = $2|" "$conf"; else echo "$1 = $2" >>"$conf"; fi
}
set_conf user '"root"'
set_conf group '"root"'
set_conf dynamic_ownership 0
set_conf remember_owner 0
set_conf security_driver '"none"'

if ! pgrep -x virtlogd >/dev/null; then
  log "starting virtlogd"
  virtlogd -d
fi
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  if ! pgrep -x libvirtd >/dev/null; then
    log "starting libvirtd"
    libvirtd -d
  fi
  for _ in $(seq 1 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
fi
virsh -c qemu:///system version >/dev/null || { log "libvirtd did not come up; see /var/log/libvirt" >&2; exit 1; }
log "libvirtd ready"
