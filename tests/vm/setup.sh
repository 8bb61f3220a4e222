#!/bin/sh
# Set up the ocirt cgroup-v2 test VM (tests/vm/guest.py) on Debian 12.
# Idempotent: installs the Debian packages only if missing, then (re)builds
# build/vm/{vmlinuz,vmlinux,initramfs.cpio.gz} if its inputs changed.
# Needs root for apt-get (skipped when everything is installed).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PKGS="linux-image-amd64 qemu-system-x86 busybox-static systemd dbus"  # systemd + dbus: the --systemd-cgroup guest
# rootless Docker in the systemd guest (test_rootless_docker_guest.py; docker.io comes
# with the Makefile's TEST_PKGS): rootlesskit, newuidmap, the user bus
PKGS="$PKGS rootlesskit uidmap dbus-user-session"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
command -v python3 >/dev/null 2>&1 || missing="$missing python3"

if [ -n "$missing" ]; then
    echo "ocirt-vm: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -o DPkg::Lock::Timeout=600 >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -o DPkg::Lock::Timeout=600 $missing
fi

python3 "$HERE/mkinitramfs.py" --if-needed
