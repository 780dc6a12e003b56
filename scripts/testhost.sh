#!/usr/bin/env bash
# A second libvirt "host" on this machine, for migration, SFTP and agentless (SSH) tests.
#
#   testhost.sh up     NAME [ADDR]   start it (idempotent); ADDR defaults to 10.77.0.2
#   testhost.sh down   NAME          stop it: destroy its domains, stop its daemons, remove its network
#   testhost.sh status NAME          print key=value facts; exit 0 only if everything answers
#
# The host lives in its own network namespace (joined to the root namespace by a veth pair:
# root side <ADDR's /24>.1, host side ADDR) and its own mount + UTS namespace, in which private
# copies of /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt
# are bind-mounted, so its virtlogd + libvirtd are independent of the machine's own. libvirtd
# listens on TCP at ADDR without authentication (test only; the address is reachable from this
# machine alone). An sshd on ADDR:22 accepts only the generated test key.
#
# The root namespace's libvirtd is left untouched: migrations in either direction are driven
# from the root namespace by a client that connects to both daemons (qemu:///system and
# qemu+tcp://ADDR/system), so the root daemon needs no TCP listener.
#
# Everything else in the filesystem is shared, so files a domain XML names (kernel, initrd,
# serial log directory) are at the same path on both hosts as long as they live outside the
# private libvirt directories (e.g. under the repo or os.tmpdir()).
#
# State and keys: /var/lib/deskpool-testhost/ (client key: client_ed25519; per host: NAME/).
set -euo pipefail

STATE=/var/lib/deskpool-testhost
PRIVATE_DIRS=(/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt)

log() { printf '[testhost] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 up|down|status NAME [ADDR]   (NAME: 1-10 of [a-z0-9], starting with a letter)"; }

(($# >= 2)) || usage
cmd="$1"; name="$2"; addr_arg="${3:-}"
[[ "$name" =~ ^[a-z][a-z0-9]{0,9}$ ]] || usage
[[ $EUID -eq 0 ]] || die "must run as root (it creates namespaces and starts libvirtd)"

hdir="$STATE/$name"
nsdir="$STATE/ns"
mnt_ns="$nsdir/$name.mnt"
uts_ns="$nsdir/$name.uts"
veth_root="dpr-$name"
veth_host="dph-$name"

mkdir -p "$STATE" "$nsdir" "$hdir"
chmod 700 "$STATE"
# One caller at a time per host: parallel test files may all ask for the same host.
exec 9>"$STATE/$name.lock"
flock 9

if [[ -n "$addr_arg" ]]; then
  addr="$addr_arg"
elif [[ -s "$hdir/addr" ]]; then
  addr="$(cat "$hdir/addr")"
else
  addr=10.77.0.2
fi
[[ "$addr" =~ ^([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})\.([0-9]{1,3})$ ]] || die "ADDR must be an IPv4 address, got '$addr'"
root_addr="${BASH_REMATCH[1]}.1"
[[ "${BASH_REMATCH[2]}" != 1 && "${BASH_REMATCH[2]}" -lt 255 ]] || die "ADDR must not be .1 (the root side) or .255"

ns_exec() { nsenter --mount="$mnt_ns" --uts="$uts_ns" --net="/var/run/netns/$name" "$@" 9>&-; }
pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
ns_is_live() { [[ -e "$1" ]] && nsenter --mount="$mnt_ns" true 2>/dev/null; }
libvirt_uri="qemu+tcp://$addr/system"
virsh_host() { virsh -q -c "$libvirt_uri" "$@"; }

set_conf() { # file key value: replace or append `key = value`
  if grep -qE "^\s*$2\s*=" "$1"; then sed -i -E "s|^\s*$2\s*=.*|$2 = $3|" "$1"; else echo "$2 = $3" >>"$1"; fi
}

up_network() {
  if ! ip netns list | awk '{print $1}' | grep -qx "$name"; then
    log "creating network namespace $name"
    ip netns add "$name"
  fi
  if ! ip link show "$veth_root" >/dev/null 2>&1; then
    log "creating veth $veth_root <-> $veth_host ($root_addr <-> $addr)"
    ip link add "$veth_root" type veth peer name "$veth_host" netns "$name"
  fi
  ip addr replace "$root_addr/24" dev "$veth_root"
  ip link set "$veth_root" up
  ip -n "$name" addr replace "$addr/24" dev "$veth_host"
  ip -n "$name" link set "$veth_host" up
  ip -n "$name" link set lo up
}

prepare_private_dirs() {
  local d copy
  for d in "${PRIVATE_DIRS[@]}"; do
    copy="$hdir/fs$d"
    [[ -d "$copy" ]] && continue
    mkdir -p "$copy"
    if [[ "$d" == /etc/libvirt ]]; then
      cp -a /etc/libvirt/. "$copy/"
      # The machine's own persistent domains, pools and autostart links are not this host's.
      rm -f "$copy"/qemu/*.xml "$copy"/qemu/autostart/* "$copy"/storage/*.xml "$copy"/storage/autostart/*
    fi
  done
  mkdir -p "$hdir/fs/var/lib/libvirt/images" "$hdir/fs/var/log/libvirt/qemu"

  [[ -s "$hdir/host_uuid" ]] || cat /proc/sys/kernel/random/uuid >"$hdir/host_uuid"
  local ld="$hdir/fs/etc/libvirt/libvirtd.conf" qc="$hdir/fs/etc/libvirt/qemu.conf"
  set_conf "$ld" listen_tls 0
  set_conf "$ld" listen_tcp 1
  set_conf "$ld" listen_addr "\"$addr\""
  set_conf "$ld" auth_tcp '"none"'
  # libvirt refuses to migrate to a daemon with its own host UUID.
  set_conf "$ld" host_uuid "\"$(cat "$hdir/host_uuid")\""
  set_conf "$qc" user '"root"'
  set_conf "$qc" group '"root"'
  set_conf "$qc" dynamic_ownership 0
  set_conf "$qc" remember_owner 0
  set_conf "$qc" security_driver '"none"'
  # Two daemons managing the same cgroup paths fight; this one stays out of cgroups.
  set_conf "$qc" cgroup_controllers '[ ]'
  set_conf "$qc" migration_address '"0.0.0.0"'
}

up_mount_ns() {
  # Persistent namespaces are bind-mounted onto files, which needs a private-propagation parent.
  if ! mountpoint -q "$nsdir"; then mount --bind "$nsdir" "$nsdir"; fi
  mount --make-private "$nsdir"
  if ns_is_live "$mnt_ns"; then return; fi
  umount "$mnt_ns" 2>/dev/null || true
  umount "$uts_ns" 2>/dev/null || true
  touch "$mnt_ns" "$uts_ns"
  log "creating mount + UTS namespace for $name"
  local binds="" d
  for d in "${PRIVATE_DIRS[@]}"; do
    mkdir -p "$d"
    binds+="mount --bind '$hdir/fs$d' '$d' && "
  done
  unshare --mount="$mnt_ns" --uts="$uts_ns" --propagation private \
    sh -c "set -e; hostname '$name'; ${binds} true"
}

write_sshd_config() {
  [[ -s "$STATE/client_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C deskpool-testhost-client -f "$STATE/client_ed25519"
  [[ -s "$hdir/ssh_host_ed25519_key" ]] || ssh-keygen -q -t ed25519 -N '' -C "deskpool-testhost-$name" -f "$hdir/ssh_host_ed25519_key"
  cp "$STATE/client_ed25519.pub" "$hdir/authorized_keys"
  chmod 600 "$hdir/authorized_keys"
  printf '%s %s\n' "$addr" "$(cut -d' ' -f1,2 "$hdir/ssh_host_ed25519_key.pub")" >"$hdir/known_hosts"
  ssh-keygen -l -E sha256 -f "$hdir/ssh_host_ed25519_key.pub" | awk '{print $2}' >"$hdir/host_fingerprint"
  cat >"$hdir/sshd_config" <<EOF
ListenAddress $addr:22
HostKey $hdir/ssh_host_ed25519_key
PidFile $hdir/sshd.pid
AuthorizedKeysFile $hdir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
EOF
}

start_daemons() {
  if ! pid_alive "$hdir/virtlogd.pid"; then
    log "starting virtlogd for $name"
    rm -f "$hdir/virtlogd.pid"
    ns_exec virtlogd -d -p "$hdir/virtlogd.pid"
  fi
  if ! pid_alive "$hdir/libvirtd.pid"; then
    log "starting libvirtd for $name on $addr"
    rm -f "$hdir/libvirtd.pid"
    ns_exec libvirtd -d -l -p "$hdir/libvirtd.pid"
  fi
  local _
  for _ in $(seq 1 100); do virsh_host version >/dev/null 2>&1 && break; sleep 0.1; done
  virsh_host version >/dev/null 2>&1 || die "libvirtd of $name did not answer at $libvirt_uri; see $hdir/fs/var/log/libvirt"
  if ! pid_alive "$hdir/sshd.pid"; then
    log "starting sshd for $name on $addr:22"
    mkdir -p /run/sshd
    ns_exec /usr/sbin/sshd -f "$hdir/sshd_config" -E "$hdir/sshd.log"
  fi
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null || die "sshd of $name did not answer at $addr:22; see $hdir/sshd.log"
}

print_status() {
  local ok=1 netns=no lv=no sshd=no
  ip netns list | awk '{print $1}' | grep -qx "$name" && netns=yes || ok=0
  if virsh_host version >/dev/null 2>&1; then lv=yes; else ok=0; fi
  if pid_alive "$hdir/sshd.pid" && (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null; then sshd=yes; else ok=0; fi
  cat <<EOF
name=$name
addr=$addr
root_addr=$root_addr
netns=$netns
libvirtd=$lv
sshd=$sshd
libvirt_uri=$libvirt_uri
ssh_user=root
ssh_port=22
ssh_key=$STATE/client_ed25519
known_hosts=$hdir/known_hosts
mount_ns=$mnt_ns
host_fingerprint=$(cat "$hdir/host_fingerprint" 2>/dev/null || true)
EOF
  ((ok))
}

stop_pidfile() { # pidfile what
  pid_alive "$1" || { rm -f "$1"; return 0; }
  local pid _; pid="$(cat "$1")"
  log "stopping $2 ($pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

down() {
  local dom
  if virsh_host version >/dev/null 2>&1; then
    for dom in $(virsh_host list --all --name); do
      log "removing domain $dom from $name"
      virsh_host destroy "$dom" >/dev/null 2>&1 || true
      virsh_host undefine "$dom" --managed-save --nvram >/dev/null 2>&1 \
        || virsh_host undefine "$dom" >/dev/null 2>&1 || true
    done
  fi
  stop_pidfile "$hdir/sshd.pid" sshd
  stop_pidfile "$hdir/libvirtd.pid" libvirtd
  stop_pidfile "$hdir/virtlogd.pid" virtlogd
  umount "$mnt_ns" 2>/dev/null || true
  umount "$uts_ns" 2>/dev/null || true
  rm -f "$mnt_ns" "$uts_ns"
  ip link del "$veth_root" 2>/dev/null || true
  ip netns del "$name" 2>/dev/null || true
  # Private libvirt state goes; keys stay so the host keeps its identity across restarts.
  rm -rf "$hdir/fs"
  log "$name is down"
}

case "$cmd" in
  up)
    echo "$addr" >"$hdir/addr"
    up_network
    prepare_private_dirs
    up_mount_ns
    write_sshd_config
    start_daemons
    print_status
    ;;
  down) down ;;
  status) print_status ;;
  *) usage ;;
esac
