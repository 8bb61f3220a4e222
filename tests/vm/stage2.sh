# Stage 2 of the ocirt test VM's init: PID 1 in the switched-to root (the host
# tree under a tmpfs overlay). Run by /run/ocirt-vm/busybox sh; see init.sh.
# With /xfer/systemd (guest.run_in_guest(systemd=True)) PID 1 becomes systemd, with
# those unit files in /run/systemd/system; its ocirt-vm-run.service runs this
# script again with the argument "run".
BB=/run/ocirt-vm/busybox
cd /
if [ "$1" != run ] && [ -d /xfer/systemd ]; then
    "$BB" mkdir -p /run/systemd/system
    "$BB" cp -r /xfer/systemd/. /run/systemd/system/
    "$BB" grep -v '^#' /xfer/systemd-masked | while read -r u; do
        [ -n "$u" ] && "$BB" ln -sf /dev/null "/run/systemd/system/$u"
    done
    exec /lib/systemd/systemd --unit=ocirt-vm.target --show-status=0 --log-level=warning \
        --log-target=console
    echo "ocirt-vm-init: cannot exec /lib/systemd/systemd" >>/xfer/init-error
    "$BB" poweroff -f
fi
"$BB" env -i /bin/sh /xfer/run.sh </dev/null >/xfer/out 2>&1
echo $? >/xfer/rc
"$BB" sync
"$BB" poweroff -f
