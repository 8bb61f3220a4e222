# Stage 2 of the ocirt test VM's init: PID 1 in the switched-to root (the host
# tree under a tmpfs overlay). Run by /run/ocirt-vm/busybox sh; see init.sh.
BB=/run/ocirt-vm/busybox
cd /
"$BB" env -i /bin/sh /xfer/run.sh </dev/null >/xfer/out 2>&1
echo $? >/xfer/rc
"$BB" sync
"$BB" poweroff -f
