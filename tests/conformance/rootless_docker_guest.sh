#!/bin/sh
# Rootless Docker with ocirt and limits, run as root in the systemd guest (tests/vm,
# pure cgroup v2) by test_rootless_docker_guest.py:
#   sh rootless_docker_guest.sh OCIRT [dir to make o+x ...]
# Makes two users with subuids and starts their user managers (user@UID.service):
# * dk: Debian's delegation (user@.service: Delegate=pids memory cpu); its
#   dockerd-rootless.sh runs as a user unit with Delegate=yes, as Docker documents;
# * dk2: a drop-in leaves memory out of its manager's cgroup; its dockerd-rootless.sh
#   is started by hand outside the manager (in this script's service, which has the
#   memory controller), so Docker passes --memory on and ocirt must refuse it.
# Both: the systemd cgroup driver, vfs, no bridge/iptables, rootlesskit --net=host
# (no /dev/net/tun needed), ocirt added as a runtime. Prints one line per check:
#   CHECK <name> <ok|FAIL> <seconds> <detail>
# and raw output between <<name>> markers. Exit 0 once the checks ran (the caller
# judges them), 3 when the set-up failed (SETUP-FAILED says where), 4 when a tool is
# missing (MISSING names it).
O=$1
shift
for d in "$@"; do chmod o+x "$d"; done
DOCKER=/usr/bin/docker
ROOTLESS_SH=/usr/share/docker.io/contrib/dockerd-rootless.sh
DFLAGS="--exec-opt native.cgroupdriver=systemd --storage-driver=vfs --iptables=false"
DFLAGS="$DFLAGS --ip-masq=false --ip-forward=false --bridge=none --add-runtime ocirt=$O"
T0=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
check() {  # name ok|FAIL start-time detail...
    n=$1 r=$2 s=$3
    shift 3
    echo "CHECK $n $r $(since "$s") $*"
}
die() { echo "SETUP-FAILED $* (at $(since "$T0")s)"; exit 3; }

for tool in useradd usermod setpriv "$DOCKER" /usr/sbin/dockerd "$ROOTLESS_SH" rootlesskit \
        newuidmap /usr/lib/systemd/user/dbus.socket; do
    command -v "$tool" >/dev/null 2>&1 || [ -e "$tool" ] || { echo "MISSING $tool"; exit 4; }
done

# --- users and their managers ----------------------------------------------------------
mkuser() {  # name subid-start -> prints the uid
    useradd -m -d "/tmp/$1" -s /bin/sh "$1" >/dev/null 2>&1 || return 1
    if ! grep -q "^$1:" /etc/subuid; then
        usermod --add-subuids "$2-$(($2 + 65535))" --add-subgids "$2-$(($2 + 65535))" "$1" \
            || return 1
    fi
    id -u "$1"
}
U1=$(mkuser dk 300000) || die "useradd dk"
U2=$(mkuser dk2 400000) || die "useradd dk2"
H1=/tmp/dk
H2=/tmp/dk2
mkdir -p "/run/systemd/system/user@$U2.service.d" "/run/systemd/system/user-$U2.slice.d"
printf '[Service]\nDelegate=\nDelegate=pids cpu\nMemoryAccounting=no\n' \
    >"/run/systemd/system/user@$U2.service.d/50-no-memory.conf"
printf '[Slice]\nDisableControllers=memory\n' \
    >"/run/systemd/system/user-$U2.slice.d/50-no-memory.conf"
systemctl daemon-reload || die "systemctl daemon-reload"

asu() {  # uid command... : as that user, with its session's environment
    u=$1
    shift
    setpriv --reuid="$u" --regid="$u" --clear-groups -- env -i \
        PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="/tmp/$(id -un "$u")" \
        XDG_RUNTIME_DIR="/run/user/$u" DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$u/bus" \
        DOCKER_HOST="unix:///run/user/$u/docker.sock" "$@"
}

s=$(now)
for u in "$U1" "$U2"; do
    systemctl start "user@$u.service" || die "systemctl start user@$u.service"
    [ -S "/run/user/$u/bus" ] || die "no user bus /run/user/$u/bus (dbus-user-session)"
done
echo "<<delegation>>"
for u in "$U1" "$U2"; do
    echo "$u $(cat "/sys/fs/cgroup/user.slice/user-$u.slice/user@$u.service/cgroup.controllers")"
done
echo "<</delegation>>"
check user-managers ok "$s"

# dk: the user unit
s=$(now)
mkdir -p "$H1/.config/systemd/user"
cat >"$H1/.config/systemd/user/docker.service" <<UNIT
[Unit]
Description=rootless dockerd (ocirt test)
[Service]
Environment=PATH=/usr/bin:/bin:/usr/sbin:/sbin
Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=host
Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=none
ExecStart=$ROOTLESS_SH $DFLAGS
Delegate=yes
Type=simple
KillMode=mixed
StandardOutput=file:$H1/dockerd.log
StandardError=file:$H1/dockerd.log
UNIT
chown -R "$U1:$U1" "$H1/.config"
asu "$U1" systemctl --user daemon-reload || die "systemctl --user daemon-reload"
asu "$U1" systemctl --user start docker.service || die "systemctl --user start docker"
wait_dockerd() {  # uid: until its docker.sock answers (one at a time: under TCG two
    u=$1            # starting at once miss containerd's start-up timeout)
    h=/tmp/$(id -un "$u")
    end=$(($(date +%s) + 300))
    until [ -S "/run/user/$u/docker.sock" ] && asu "$u" $DOCKER version >/dev/null 2>&1; do
        if [ "$(date +%s)" -gt $end ] || grep -q 'failed to start\|rootlesskit:parent\] error' "$h/dockerd.log"; then
            echo "<<dockerd-$u>>"; grep -v 'module=grpc' "$h/dockerd.log" | tail -30; echo "<</dockerd-$u>>"
            die "the rootless dockerd of uid $u did not come up"
        fi
        sleep 2
    done
}
wait_dockerd "$U1"
check dockerd ok "$s" "$(asu "$U1" $DOCKER info --format '{{.CgroupDriver}} cgroup-v{{.CgroupVersion}} {{json .SecurityOptions}} runtimes={{range $k, $v := .Runtimes}}{{$k}},{{end}}' 2>&1)"

# --- the image: a busybox rootfs, imported (no registry) --------------------------------
s=$(now)
R=/tmp/bbroot
mkdir -p $R/bin $R/proc $R/sys $R/dev $R/tmp $R/etc
cp /bin/busybox $R/bin/busybox
for a in sh cat dd echo true sleep grep; do ln -s busybox "$R/bin/$a"; done
tar -C $R -cf /tmp/bb.tar . && chmod 644 /tmp/bb.tar
asu "$U1" $DOCKER import /tmp/bb.tar bb:latest >/dev/null || die "docker import (uid $U1)"
check import ok "$s"

D="$DOCKER run --runtime ocirt --network none"

# 1. memory: 64 MiB in a 32 MiB container is OOM-killed, and Docker says so
s=$(now)
echo "<<memory>>"
asu "$U1" $D --name mem --memory 32m --memory-swap 32m bb \
    sh -c 'cat /sys/fs/cgroup/memory.max; exec dd if=/dev/zero of=/dev/null bs=64M count=1' 2>&1
echo "rc=$?"
st=$(asu "$U1" $DOCKER inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' mem 2>&1)
echo "state=$st"
echo "<</memory>>"
case "$st" in "true 137") r=ok ;; *) r=FAIL ;; esac
check memory-oom $r "$s" "OOMKilled ExitCode: $st"

# 2. pids: a fork bomb stops at 8. The container's shell starts it and becomes a
# sleep (exec: no fork needed); its cgroup is read from here, as the bomb leaves the
# container no pid to fork a reader with.
s=$(now)
asu "$U1" $D -d --name pids --pids-limit 8 bb \
    sh -c '(b() { b | b & }; b) 2>/dev/null; exec sleep 60' >/dev/null 2>&1
pid=$(asu "$U1" $DOCKER inspect -f '{{.State.Pid}}' pids 2>&1)
pd=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
sleep 4
pmax=$(cat "$pd/pids.max" 2>&1); cur=$(cat "$pd/pids.current" 2>&1)
ev=$(sed -n 's/^max //p' "$pd/pids.events" 2>/dev/null)
echo "<<pids>>"; echo "pid=$pid cgroup=$pd max=$pmax current=$cur events.max=$ev"; echo "<</pids>>"
asu "$U1" $DOCKER rm -f pids >/dev/null 2>&1
gone=$([ -d "$pd" ] && echo no || echo yes)
if [ "$pmax" = 8 ] && [ "$cur" -le 8 ] 2>/dev/null && [ "${ev:-0}" -gt 0 ] && [ $gone = yes ]; then
    r=ok; else r=FAIL; fi
check pids-fork-bomb $r "$s" "pids.max=$pmax pids.current=$cur fork refusals (pids.events max)=$ev cgroup removed by rm -f: $gone"

# 3. cpu: a busy loop under --cpus 0.2, measured from the container's cpu.stat
s=$(now)
asu "$U1" $D -d --name cpu --cpus 0.2 bb sh -c 'while :; do :; done' >/dev/null 2>&1
pid=$(asu "$U1" $DOCKER inspect -f '{{.State.Pid}}' cpu 2>&1)
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
d=/sys/fs/cgroup$cg
echo "<<cpu>>"; echo "pid=$pid cgroup=$cg"; cat "$d/cpu.max"
u0=$(awk '/^usage_usec/ {print $2}' "$d/cpu.stat"); t0=$(date +%s%N)
sleep 6
u1=$(awk '/^usage_usec/ {print $2}' "$d/cpu.stat"); t1=$(date +%s%N)
cat "$d/cpu.stat"; echo "<</cpu>>"
pct=$(awk -v a="$u0" -v b="$u1" -v x="$t0" -v y="$t1" 'BEGIN { printf "%.1f", (b - a) * 100000 / (y - x) }')
max=$(cat "$d/cpu.max" 2>/dev/null)
r=$(awk -v p="$pct" -v m="$max" 'BEGIN { print (m == "20000 100000" && p >= 5 && p <= 30) ? "ok" : "FAIL" }')
check cpu-quota "$r" "$s" "cpu.max=$max usage=${pct}% of one cpu over 6s (cgroup $cg)"

# 4. docker update on the running container reaches its memory.max
s=$(now)
echo "<<update>>"
asu "$U1" $DOCKER update --memory 48m --memory-swap 48m cpu 2>&1
echo "rc=$?"
mm=$(cat "$d/memory.max" 2>&1)
echo "memory.max=$mm"
echo "<</update>>"
[ "$mm" = 50331648 ] && r=ok || r=FAIL
check update-memory $r "$s" "memory.max=$mm"
asu "$U1" $DOCKER rm -f cpu >/dev/null 2>&1

# 5. dk2's manager has no memory controller: one clear line, no silent run. Its
# dockerd is started by hand, outside the manager (in this script's service, which
# has the memory controller), once dk's is stopped.
s=$(now)
asu "$U1" systemctl --user stop docker.service
asu "$U2" env DOCKERD_ROOTLESS_ROOTLESSKIT_NET=host DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=none \
    setsid "$ROOTLESS_SH" $DFLAGS >"$H2/dockerd.log" 2>&1 </dev/null &
wait_dockerd "$U2"
asu "$U2" $DOCKER import /tmp/bb.tar bb:latest >/dev/null || die "docker import (uid $U2)"
check dockerd2 ok "$s"
s=$(now)
err=$(asu "$U2" $D --name nomem --memory 32m bb echo ran-without-limit 2>&1)
rc=$?
echo "<<nodeleg>>"; echo "rc=$rc"; echo "$err"; echo "<</nodeleg>>"
# (docker 20.10's client may add `level=error msg="error waiting for container: context
# canceled"` after a failed create, with runc too: its own line, not the runtime's)
n=$(echo "$err" | grep -v 'msg="error waiting for container' | grep -c .)
if [ "$rc" -ne 0 ] && [ "$n" -eq 1 ] && echo "$err" | grep -q 'controller memory is not delegated' \
        && echo "$err" | grep -q 'Delegate=' && ! echo "$err" | grep -q ran-without-limit; then
    r=ok; else r=FAIL; fi
check nodelegation-memory $r "$s" "$(echo "$err" | grep -v 'msg="error waiting for container')"
s=$(now)
out=$(asu "$U2" $D --name plain bb echo plain-ok 2>&1)
[ "$out" = plain-ok ] && r=ok || r=FAIL
check nodelegation-plain $r "$s" "$out"

echo "TOTAL $(since "$T0")"
exit 0
