#!/bin/sh
# Installs what building and testing monokube needs on Debian 12, once:
#   zstd            - compresses the payload appended to the launcher (bin/monokube)
#   busybox-static  - the tests build their container image from it
#   iproute2 util-linux - ip netns / nsenter / unshare for the namespaced test nodes
#   mmdebstrap bzip2 - the conformance images' Debian userland, busybox's source (make conformance-tools)
#   postgresql mariadb-server - real databases the datastore tests start on loopback in a node's namespace
#   gcc-aarch64-linux-gnu - compiles runc for arm64 (make build GOARCH=arm64, also in make test);
#                   runc's libseccomp and C library, for either architecture, are Debian packages
#                   the Makefile downloads (hack/debian-packages.lock)
#   qemu-system-x86 qemu-system-arm qemu-utils - the VMs of make vmtest (systemd, OpenRC, arm64 guests)
set -eu
packages="zstd busybox-static iproute2 util-linux mmdebstrap bzip2 postgresql mariadb-server
	gcc-aarch64-linux-gnu qemu-system-x86 qemu-system-arm qemu-utils"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	apt-get update -qq
	# The database packages would start system-wide servers; the tests run
	# their own. policy-rc.d tells the packages not to start anything.
	policy=/usr/sbin/policy-rc.d
	[ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; trap 'rm -f "$policy"' EXIT; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
