#!/bin/sh
# Builds a Debian 12 (bookworm, amd64) guest for the VM tests (test/vm):
#
#   hack/vmimage.sh systemd|openrc OUTDIR
#
# OUTDIR gets vmlinuz and initrd.img (the image's own kernel and initramfs, for
# qemu -kernel/-initrd: no bootloader, no partition table) and root.img, a
# sparse 6 GiB raw ext4 file system made with `mkfs.ext4 -d` from the rootfs
# directory (no loop device, no mount). The guest boots with
#   root=/dev/vda rw console=ttyS0 net.ifnames=0
# on qemu's user-mode network with the static address 10.0.2.15/24 and is
# driven through qemu-guest-agent on the virtio-serial port
# org.qemu.guest_agent.0. The two images differ only in their init:
#   systemd  systemd as PID 1, eth0 from systemd-networkd
#   openrc   sysvinit + OpenRC (rc_cgroup_mode=unified), eth0 from ifupdown;
#            the build fails if systemd-sysv got in.
# Both mount cgroup v2 only at /sys/fs/cgroup.
#
# A rebuild is skipped when OUTDIR holds the outputs of this same script for
# the same INIT (OUTDIR/stamp). Downloaded .debs are kept in
# $VMIMAGE_APT_CACHE (default ~/.cache/monokube/vmimage-apt), shared by both
# images, so a rebuild or the second image downloads little.
set -eu

usage() { echo "usage: $0 systemd|openrc OUTDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
init=$1
out=$2
case "$init" in systemd|openrc) ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "vmimage: must run as root (mmdebstrap --mode=root)" >&2; exit 1; }

log() { echo "vmimage[$init]: $*"; }

mirror=${VMIMAGE_MIRROR:-http://deb.debian.org/debian}
cache=${VMIMAGE_APT_CACHE:-${HOME:-/root}/.cache/monokube/vmimage-apt}
stamp="$(sha256sum < "$0" | cut -c1-16) $init $mirror"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && [ -f "$out/root.img" ]; then
	log "up to date: $out"
	exit 0
fi

# What every guest needs: a kernel with its initramfs, the agent the tests
# talk to, udev (it names /dev/virtio-ports/org.qemu.guest_agent.0, which both
# qemu-ga and its systemd unit wait for, and loads the virtio and 9p modules),
# and the tools the tests call.
packages=linux-image-amd64,initramfs-tools,udev,qemu-guest-agent,iproute2,kmod,procps,ca-certificates,e2fsprogs,util-linux
case "$init" in
systemd) packages=$packages,systemd-sysv,dbus ;;
openrc) packages=$packages,sysvinit-core,openrc,ifupdown ;;
esac

mkdir -p "$out" "$cache"
rm -f "$out/stamp"
root=$out/rootfs
rm -rf "$root"
# Written before the kernel package is installed, so that its postinst
# builds the initramfs once, small: MODULES=list puts only what mounts
# root=/dev/vda in it (virtio_pci, virtio_blk, ext4 and what they need)
# instead of every storage driver (MODULES=most, 35 MB), which the emulated
# CPU spends ~10 s unpacking and probing at every boot. These paths belong to
# no package, so dpkg does not ask about them.
initramfs_config='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
	echo MODULES=list > "$1/etc/initramfs-tools/conf.d/vmimage.conf" &&
	printf "virtio_pci\nvirtio_blk\next4\n" > "$1/usr/share/initramfs-tools/modules.d/vmimage"'

# mmdebstrap unpacks into $root and runs the packages' maintainer scripts
# there; its policy-rc.d keeps them from starting services on this machine.
# --skip=essential/unlink keeps the essential .debs in the apt cache so the
# sync-out hook saves them for the next build too.
log "mmdebstrap bookworm ($packages)"
start=$(date +%s)
mmdebstrap --mode=root --variant=minbase --include="$packages" \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--skip=essential/unlink \
	--essential-hook="$initramfs_config" \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
	--setup-hook="sync-in '$cache' /var/cache/apt/archives" \
	--customize-hook="sync-out /var/cache/apt/archives '$cache'" \
	bookworm "$root" "$mirror"
log "mmdebstrap took $(($(date +%s) - start))s"

if [ "$init" = openrc ] && chroot "$root" dpkg-query -W -f='${Status}' systemd-sysv 2>/dev/null | grep -q 'install ok'; then
	echo "vmimage: systemd-sysv is installed in the openrc image" >&2
	exit 1
fi

log "configure: hostname, network, fstab, agent"
host=vm-$init
echo "$host" > "$root/etc/hostname"
cat > "$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$host
::1	localhost ip6-localhost ip6-loopback
EOF
# mmdebstrap copied this machine's resolv.conf; slirp's DNS forwarder is
# 10.0.2.3. Neither image runs systemd-resolved, so this stays a plain file.
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"
# errors=remount-ro: a corrupt root becomes visible instead of worse.
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
# systemd-networkd asks the kernel for the nl80211 netlink family at start,
# which loads cfg80211 (Wi-Fi) through a modprobe that took from 10 s to over
# a minute under the emulated CPU; networkd does not start, or stop, until
# it returns: boots waited for it and reboots hung on it. Nothing here needs
# Wi-Fi; a blacklisted alias makes that modprobe fail at once.
echo "blacklist cfg80211" > "$root/etc/modprobe.d/vmimage.conf"

case "$init" in
systemd)
	# Static, so the guest needs no DHCP client and is up as soon as eth0 is.
	mkdir -p "$root/etc/systemd/network"
	cat > "$root/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
EOF
	chroot "$root" systemctl enable systemd-networkd.service
	# The agent's unit has no [Install]: udev's 60-qemu-guest-agent.rules
	# pulls it in (SYSTEMD_WANTS) when the virtio port appears. Wanting it
	# from multi-user.target too costs nothing (it BindsTo the port's device
	# unit) and keeps it started should the udev event be missed.
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf /lib/systemd/system/qemu-guest-agent.service \
		"$root/etc/systemd/system/multi-user.target.wants/qemu-guest-agent.service"
	# Nobody logs in on the serial console; the boot log is all it is for.
	# The timers (apt, dpkg backup, e2scrub, fstrim) and e2scrub_reap would
	# only add load at random times in a guest that lives for one test.
	chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service \
		apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
		fstrim.timer e2scrub_reap.service
	;;
openrc)
	cat > "$root/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
	address 10.0.2.15/24
	gateway 10.0.2.2
EOF
	# OpenRC's default is hybrid (v1 controllers plus a v2 tree under
	# /sys/fs/cgroup/unified); Kubernetes is tested on v2 only.
	sed -i '/^#*rc_cgroup_mode=/d' "$root/etc/rc.conf"
	echo 'rc_cgroup_mode="unified"' >> "$root/etc/rc.conf"
	# Debian's openrc runs the LSB scripts in /etc/init.d that are in a
	# runlevel; installing a package puts them there from their LSB header
	# (S -> sysinit, 2-5 -> default). Say so explicitly for the three the
	# tests depend on (rc-update skips what is already there): udev in
	# sysinit names the agent's port before the agent starts in default.
	chroot "$root" rc-update add udev sysinit
	chroot "$root" rc-update add networking sysinit
	chroot "$root" rc-update add qemu-guest-agent default
	;;
esac

# The initramfs must hold virtio_pci, virtio_blk and ext4 to find
# root=/dev/vda: check, do not assume.
kver=$(ls "$root/lib/modules")
log "kernel $kver"
for m in virtio_pci virtio_blk ext4; do
	chroot "$root" lsinitramfs "/boot/initrd.img-$kver" | grep -q "/$m\.ko" ||
		{ echo "vmimage: initrd.img-$kver has no $m module" >&2; exit 1; }
done
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"

# 6 GiB, sparse: Kubernetes and its images fit, and only what is written
# takes space. mkfs.ext4 -d copies the tree with owners, modes, xattrs and
# device nodes, as root.
log "mkfs.ext4 -d $root $out/root.img (6G)"
rm -f "$out/root.img"
mkfs.ext4 -q -F -L root -d "$root" "$out/root.img" 6G
rm -rf "$root"
echo "$stamp" > "$out/stamp"
log "done in $(($(date +%s) - start))s: $out/vmlinuz $out/initrd.img $out/root.img ($(du -h "$out/root.img" | cut -f1) used)"
