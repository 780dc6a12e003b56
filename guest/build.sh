#!/usr/bin/env bash
# Builds the tiny test guest: a Debian kernel and a busybox initramfs, from Debian packages
# fetched with `apt-get download` (no other downloads). Output in guest/build/:
#   vmlinuz (Debian's compressed kernel), vmlinux (the same kernel uncompressed: QEMU boots its
#   ELF through the PVH entry point, which skips the slow XZ decompression under TCG: ~2.5 s
#   instead of ~9 s to the banner), initramfs.cpio.gz, manifest.txt (versions + sha256).
# Reproducible: the initramfs is built from a sorted file list with fixed timestamps, owners
# and gzip without a name/time header, so the same packages give the same bytes.
# Idempotent and quick when already built (a stamp of this script and its inputs); safe to run
# from several test processes at once (flock).
#
# The guest's /init prints "DESKPOOL-GUEST READY" on ttyS0, then runs what the kernel command
# line asks for:
#   deskpool.mode=counter        print "COUNT n" every 0.2 s forever
#   deskpool.mode=count-to:N     batch mode: "PROGRESS i/N" every 0.2 s, then "RESULT count=N"
#   deskpool.mode=idle           nothing (default)
#   deskpool.touch=MiB           first fill MiB of guest memory with data (for save/restore benches)
#   deskpool.cmd=<base64>        a shell script to run instead of a mode (output to ttyS0)
#   deskpool.poweroff=1          power off when the command/mode ends
#   deskpool.index=N             exported to the command as DESKPOOL_TASK_INDEX (array jobs)
# When the command/mode ends it prints "DESKPOOL-RESULT exit=<rc> <result>", where <result> is
# what the command wrote to $DESKPOOL_RESULT_FILE (count-to writes "count=N"), then
# "DESKPOOL-GUEST DONE rc=<rc>".
# Env overrides: GUEST_KERNEL_PKG (default: what linux-image-amd64 depends on), GUEST_BUILD_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${GUEST_BUILD_DIR:-$here/build}"
mkdir -p "$out"
log() { printf '[guest] %s\n' "$*" >&2; }

exec 9>"$out/.lock"
flock 9

script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [[ -f "$out/stamp" && -f "$out/vmlinuz" && -f "$out/vmlinux" && -f "$out/initramfs.cpio.gz" && "$(cat "$out/stamp")" == "$script_hash:${GUEST_KERNEL_PKG:-default}" ]]; then
  exit 0
fi

for tool in apt-get dpkg-deb cpio gzip xz; do
  command -v "$tool" >/dev/null || { log "$tool is missing: install it (sudo apt-get install $tool) and rerun"; exit 1; }
done

kernel_pkg="${GUEST_KERNEL_PKG:-}"
if [[ -z "$kernel_pkg" ]]; then
  kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  [[ -n "$kernel_pkg" ]] || { log "cannot resolve linux-image-amd64; run apt-get update (or set GUEST_KERNEL_PKG)"; exit 1; }
fi

debs="$out/debs"
mkdir -p "$debs"
fetch() { # package -> path of its .deb (cached)
  local pkg="$1" f
  f="$(ls "$debs"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)"
  if [[ -z "$f" ]]; then
    log "apt-get download $pkg"
    (cd "$debs" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    f="$(ls "$debs"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)"
    [[ -n "$f" ]] || { log "could not download $pkg (apt-get update? network?)"; exit 1; }
  fi
  printf '%s\n' "$f"
}
kernel_deb="$(fetch "$kernel_pkg")"
busybox_deb="$(fetch busybox-static)"

work="$(mktemp -d "${TMPDIR:-/tmp}/deskpool-guest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernel" "$work/bb" "$work/root"

kver="${kernel_pkg#linux-image-}"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$work/kernel" --wildcards \
  "./boot/vmlinuz-$kver" \
  "./lib/modules/$kver/kernel/drivers/virtio/*.ko" \
  "./lib/modules/$kver/kernel/drivers/acpi/button.ko" \
  "./lib/modules/$kver/kernel/drivers/input/evdev.ko"
dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$work/bb" ./bin/busybox

r="$work/root"
mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,run,etc/acpi/PWRF,lib/modules,var/log}
install -m 0755 "$work/bb/bin/busybox" "$r/bin/busybox"
for applet in $("$r/bin/busybox" --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$r/bin/$applet"
done
ln -sf ../bin/busybox "$r/sbin/init"
# Load order matters: dependencies first (modinfo -F depends).
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon; do
  install -m 0644 "$work/kernel/lib/modules/$kver/kernel/drivers/virtio/$m.ko" "$r/lib/modules/$m.ko"
done
install -m 0644 "$work/kernel/lib/modules/$kver/kernel/drivers/acpi/button.ko" "$r/lib/modules/button.ko"
install -m 0644 "$work/kernel/lib/modules/$kver/kernel/drivers/input/evdev.ko" "$r/lib/modules/evdev.ko"
printf '%s\n' virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon button evdev >"$r/lib/modules/order"

# ACPI power button (virsh shutdown) -> clean power-off.
cat >"$r/etc/acpi/PWRF/00000080" <<'SH'
#!/bin/sh
echo "DESKPOOL-GUEST POWEROFF" >/dev/ttyS0
poweroff -f
SH
chmod 0755 "$r/etc/acpi/PWRF/00000080"

cat >"$r/bin/dp-counter" <<'SH'
#!/bin/sh
# Prints an incrementing counter every 0.2 s: its continuity shows state survived save/restore.
n=0
while :; do n=$((n + 1)); echo "COUNT $n"; usleep 200000; done
SH
cat >"$r/bin/dp-count-to" <<'SH'
#!/bin/sh
# Batch mode: counts to N, one step per interval (default 0.2 s), then prints the result.
N="${1:?usage: dp-count-to N [interval_us]}"; step="${2:-200000}"
i=0
while [ "$i" -lt "$N" ]; do i=$((i + 1)); echo "PROGRESS $i/$N"; usleep "$step"; done
echo "RESULT count=$N"
echo "count=$N" >"${DESKPOOL_RESULT_FILE:-/tmp/deskpool-result}"
SH
cat >"$r/bin/dp-touch-mem" <<'SH'
#!/bin/sh
# Fills MiB of guest memory with non-zero data, so a memory snapshot really has to carry it.
mib="${1:?usage: dp-touch-mem MiB}"
# Refuse what would not fit: filling past the guest's memory ends in a kernel OOM panic.
avail=$(($(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))
if [ "$mib" -gt $((avail - 24)) ]; then echo "TOUCH-FAILED $mib MiB requested, $avail MiB available"; exit 1; fi
mkdir -p /mem && mount -t tmpfs -o size=$((mib + 8))m tmpfs /mem
# QEMU skips only zero pages when saving; every other page is written in full. So one MiB of
# random data, copied with each block's index in front, is as heavy to save as all-random
# memory, and much faster to produce under emulation than reading /dev/urandom for all of it.
head -c 1048560 /dev/urandom >/tmp/seed
i=0
while [ "$i" -lt "$mib" ]; do
  { echo "block $i"; cat /tmp/seed; } >"/mem/$i" 2>/dev/null || { echo "TOUCH-FAILED at $i MiB"; exit 1; }
  i=$((i + 1))
done
rm -f /tmp/seed
echo "TOUCHED $mib MiB"
SH
chmod 0755 "$r/bin/dp-counter" "$r/bin/dp-count-to" "$r/bin/dp-touch-mem"

cat >"$r/init" <<'SH'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done </lib/modules/order
acpid -c /etc/acpi -l /var/log/acpid.log
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^deskpool\.$1=//p" | tail -1; }
# Online hot-plugged vCPUs and memory blocks (no udev here to do it).
( while :; do
    for f in /sys/devices/system/cpu/cpu*/online /sys/devices/system/memory/memory*/online; do
      [ -f "$f" ] && [ "$(cat "$f")" = 0 ] && echo 1 >"$f" 2>/dev/null
    done
    sleep 1
  done ) &
exec </dev/ttyS0 >/dev/ttyS0 2>&1
echo "DESKPOOL-GUEST READY uptime=$(cut -d" " -f1 /proc/uptime)"
touch_mib="$(arg touch)"; [ -n "$touch_mib" ] && dp-touch-mem "$touch_mib"
cmd="$(arg cmd)"; mode="$(arg mode)"
# A batch task's index in its job, and where it may leave its result (printed at the end).
index="$(arg index)"; [ -n "$index" ] && export DESKPOOL_TASK_INDEX="$index"
export DESKPOOL_RESULT_FILE=/tmp/deskpool-result
rc=0
if [ -n "$cmd" ]; then
  echo "$cmd" | base64 -d >/tmp/cmd.sh && sh /tmp/cmd.sh; rc=$?
else
  case "${mode:-idle}" in
    counter) dp-counter ;;
    count-to:*) dp-count-to "${mode#count-to:}"; rc=$? ;;
    idle) ;;
    *) echo "unknown deskpool.mode=$mode"; rc=2 ;;
  esac
fi
# The line the agent reads a batch task's outcome from: exit status, then the result (one line).
result="$(head -c 4000 "$DESKPOOL_RESULT_FILE" 2>/dev/null | tr '\n\r' '  ' | sed 's/ *$//')"
echo "DESKPOOL-RESULT exit=$rc${result:+ $result}"
echo "DESKPOOL-GUEST DONE rc=$rc"
[ "$(arg poweroff)" = 1 ] && poweroff -f
while :; do sleep 3600; done
SH
chmod 0755 "$r/init"

# Reproducible archive: fixed mtimes and owners, sorted names, no gzip header time/name.
find "$r" -exec touch -h -d @0 {} +
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$work/initramfs.cpio.gz"
install -m 0644 "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
install -m 0644 "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
# The bzImage carries the kernel as an XZ stream; xz stops with "corrupt data" at the trailer
# that follows it, after writing the whole ELF, so its status is checked by the ELF magic.
xz_offset="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$out/vmlinuz" | head -1 | cut -d: -f1)"
[[ -n "$xz_offset" ]] || { log "no XZ payload found in $(basename "$kernel_deb")'s vmlinuz"; exit 1; }
tail -c +"$((xz_offset + 1))" "$out/vmlinuz" | xz -dcq >"$work/vmlinux" 2>/dev/null || true
[[ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" == '177ELF' ]] || { log "could not extract vmlinux"; exit 1; }
install -m 0644 "$work/vmlinux" "$out/vmlinux"
{
  echo "kernel_package=$(basename "$kernel_deb")"
  echo "busybox_package=$(basename "$busybox_deb")"
  (cd "$out" && sha256sum vmlinuz vmlinux initramfs.cpio.gz)
} >"$out/manifest.txt"
echo "$script_hash:${GUEST_KERNEL_PKG:-default}" >"$out/stamp"
log "built $(basename "$kernel_deb") + busybox initramfs in $out"
