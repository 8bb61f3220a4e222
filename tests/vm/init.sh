#!/bin/busybox sh
# /init of the ocirt test VM's initramfs (packed by tests/vm/mkinitramfs.py).
#
# Boots a pure cgroup v2 guest whose root is the host's / (9p, read-only)
# under a tmpfs overlay, switches root into it and hands over to stage2.sh,
# which runs /xfer/run.sh (written by tests/vm/guest.py), stores its output
# in /xfer/out and its exit status in /xfer/rc, and powers off.
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

log() { echo "ocirt-vm-init: $*"; }
die() {
    log "FATAL: $*"
    # rc 255 + message so the host can tell a harness failure apart.
    if [ -d /xfer ] && grep -q ' /xfer 9p' /proc/mounts; then
        echo "ocirt-vm-init: $*" >>/xfer/init-error
    fi
    sync
    poweroff -f
    exit 1
}

# Modules, in the order mkinitramfs.py resolved (dependencies first).
# A module that is built into the kernel is simply not in the list.
if [ -f /modules/order ]; then
    while read -r m; do
        [ -n "$m" ] || continue
        insmod "/modules/$m.ko" 2>/dev/null || log "insmod $m failed (built in or already loaded?)"
    done </modules/order
fi

MSIZE=262144
mkdir -p /lower /rw /newroot /xfer
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE xfer /xfer \
    || die "cannot mount the xfer 9p share"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE,ro,cache=loose hostroot /lower \
    || die "cannot mount the hostroot 9p share"
mount -t tmpfs -o mode=0755 tmpfs /rw || die "tmpfs for overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || die "overlay mount failed"

R=/newroot
mount -t proc -o nosuid,nodev,noexec proc $R/proc || die "proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs $R/sys || die "sysfs"
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 $R/sys/fs/cgroup \
    || mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 $R/sys/fs/cgroup \
    || die "cgroup2"
mount -t devtmpfs -o nosuid devtmpfs $R/dev || die "devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts $R/dev/pts || die "devpts"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm $R/dev/shm || die "/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue $R/dev/mqueue 2>/dev/null || log "no mqueue"
ln -sfn /proc/self/fd $R/dev/fd
ln -sfn /proc/self/fd/0 $R/dev/stdin
ln -sfn /proc/self/fd/1 $R/dev/stdout
ln -sfn /proc/self/fd/2 $R/dev/stderr
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs $R/run || die "/run"
# /tmp stays the overlay over the host's: a checkout under /tmp (CI clones
# anywhere) must be visible in the guest at the same path.
mkdir -p $R/xfer
mount --bind /xfer $R/xfer || die "bind /xfer"

# Hand every controller to the children of the root cgroup.
CG=$R/sys/fs/cgroup
for c in cpuset cpu io memory hugetlb pids rdma misc; do
    if grep -qw "$c" $CG/cgroup.controllers; then
        echo "+$c" >$CG/cgroup.subtree_control 2>/dev/null || log "cannot enable $c"
    fi
done

ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
hostname ocirt-vm

log "switching root"
# Leave the initramfs with switch_root rather than chroot: in a chroot,
# unshare(CLONE_NEWUSER) fails with EPERM. stage2.sh then runs as PID 1 in
# the new root, with its own copy of busybox in the new root's /run.
mkdir -p $R/run/ocirt-vm
cp /bin/busybox /stage2.sh $R/run/ocirt-vm/ || die "cannot copy stage 2"
umount -l /sys; umount -l /dev; umount -l /proc
exec switch_root $R /run/ocirt-vm/busybox sh /run/ocirt-vm/stage2.sh
echo "ocirt-vm-init: switch_root failed" >>/xfer/init-error
poweroff -f
