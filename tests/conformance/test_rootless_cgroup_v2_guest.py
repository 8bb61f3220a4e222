"""Rootless with a delegated cgroup v2 subtree: the online-judge case, in the qemu
guest (tests/vm: pure cgroup v2, every controller on).

One boot (the guest is slow) runs, as an unprivileged user the test made:
1. in a cgroup whose parent subtree root delegated to the user (directory,
   cgroup.procs, cgroup.subtree_control and cgroup.threads chowned, as systemd's
   Delegate=yes does), `ocirt run --keep --usage-file` of a container with memory,
   pids and cpu limits that reads them and is OOM-killed once; then
   `ocirt events --stats`, then delete;
2. in a cgroup the user does not own: the same config fails naming the memory
   limit; a config without limits runs (without a cgroup of its own).
The results are printed between markers and checked here.
"""
import json
import os
import re
import shlex

import pytest

from helpers import OCIRT, guest_harness
from rootless_user import RootlessUser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MIB = 1 << 20
JUDGE = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; "
         "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; "
         "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo survived")
APPLETS = ("sh", "cat", "dd", "echo", "true", "grep", "head")


# ocirt.api.run_measured as the unprivileged user (issue 17): the judge's verdict in
# one call, and a wall limit that kills the container; nothing left behind.
MEASURED = """
import dataclasses, json, sys
sys.path.insert(0, %r)
from ocirt import api
judge, plain = sys.argv[1], sys.argv[2]
r = api.run_measured("measured1", judge, wall_limit=120)
print("verdict", json.dumps(dataclasses.asdict(r)))
import shutil
walled = shutil.copytree(plain, plain + "-walled", symlinks=True)
p = json.load(open(walled + "/config.json"))
p["process"]["args"] = ["sh", "-c", "sleep 300"]
json.dump(p, open(walled + "/config.json", "w"))
r = api.run_measured("measured2", walled, wall_limit=2)
print("walled", json.dumps(dataclasses.asdict(r)))
""" % REPO


def _guest():
    return guest_harness("the delegated cgroup v2 test").run_in_guest


def _config(user, args, resources=None):
    """What `ocirt spec --rootless` writes for `user`, made non-interactive."""
    from ocirt.specgen import default_spec
    cfg = default_spec(True, user.uid, user.gid)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    if resources:
        cfg["linux"]["resources"] = resources
    return cfg


def _between(out, name):
    m = re.search(rf"<<{name}>>\n(.*?)<</{name}>>", out, re.S)
    assert m, f"no {name} section in the guest output:\n{out[-4000:]}"
    return m.group(1)


def test_delegated_cgroup_v2_judge():
    run_in_guest = _guest()
    user = RootlessUser.create()
    try:
        why = user.check_launcher()
        if why:
            pytest.skip(why)
        _run(run_in_guest, user)
    finally:
        user.close()


def _run(run_in_guest, user):
    marker = os.urandom(4).hex()
    limits = {"memory": {"limit": 32 * MIB, "swap": 32 * MIB}, "pids": {"limit": 32},
              "cpu": {"quota": 50000, "period": 100000}}
    judge = json.dumps(_config(user, ["sh", "-c", JUDGE], limits))
    plain = json.dumps(_config(user, ["sh", "-c", "cat /proc/self/cgroup; echo plain-ok"]))
    # Directories an unprivileged user can't search on the way to ocirt (what the
    # host fixture granted with an ACL): o+x in the guest's overlay, not on the host.
    dirs = " ".join(shlex.quote(d) for d in user._acl + [d for d, _ in user._modes])
    deleg = f"/sys/fs/cgroup/ocirt-rl-{marker}"
    nodeleg = f"/sys/fs/cgroup/ocirt-rl-{marker}-root"
    w = f"/tmp/ocirt-rl-{marker}"
    o = shlex.quote(OCIRT)
    py = shlex.quote(os.path.join(REPO, ".venv", "bin", "python"))
    applets = " ".join(APPLETS)
    user_script = f"""
O={o}
cd {w}
echo '<<judge>>'; $O run --keep --usage-file {w}/usage.json -b {w}/judge judge; echo "rc=$?"; echo '<</judge>>'
echo '<<cgdir>>'; ls -d {deleg}/ocirt-judge; echo '<</cgdir>>'
echo '<<stats>>'; $O events --stats judge; echo '<</stats>>'
echo '<<usage>>'; cat {w}/usage.json; echo '<</usage>>'
$O delete judge
echo '<<measured>>'; {py} -c {shlex.quote(MEASURED)} {w}/judge {w}/plain; echo '<</measured>>'
echo '<<after>>'; find {deleg} -mindepth 1 -type d; echo '<</after>>'
"""
    user_script2 = f"""
O={o}
cd {w}
echo '<<denied>>'; $O run -b {w}/judge judge2; echo "rc=$?"; echo '<</denied>>'
echo '<<plain>>'; $O run -b {w}/plain plain; echo "rc=$?"; echo '<</plain>>'
echo '<<left>>'; ls $XDG_RUNTIME_DIR/ocirt; echo '<</left>>'
"""
    as_user = (f"setpriv --reuid={user.uid} --regid={user.gid} --clear-groups -- "
               f"env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME={w} "
               f"XDG_RUNTIME_DIR=/run/user/{user.uid} sh")
    script = f"""
set -e
for d in {dirs}; do chmod o+x "$d"; done
mkdir -p /run/user/{user.uid}; chown {user.uid}:{user.gid} /run/user/{user.uid}; chmod 700 /run/user/{user.uid}
for b in judge plain; do
  mkdir -p {w}/$b/rootfs/bin {w}/$b/rootfs/proc {w}/$b/rootfs/sys {w}/$b/rootfs/dev {w}/$b/rootfs/tmp {w}/$b/rootfs/etc
  cp /bin/busybox {w}/$b/rootfs/bin/busybox
  for a in {applets}; do ln -s busybox {w}/$b/rootfs/bin/$a; done
done
cat > {w}/judge/config.json <<'EOF_JUDGE'
{judge}
EOF_JUDGE
cat > {w}/plain/config.json <<'EOF_PLAIN'
{plain}
EOF_PLAIN
cat > {w}/user1.sh <<'EOF_U1'
{user_script}
EOF_U1
cat > {w}/user2.sh <<'EOF_U2'
{user_script2}
EOF_U2
chown -R {user.uid}:{user.gid} {w}
mkdir {deleg} {nodeleg}
echo "+cpu +memory +pids" > {deleg}/cgroup.subtree_control
mkdir {deleg}/shell
for f in "" /cgroup.procs /cgroup.subtree_control /cgroup.threads /shell /shell/cgroup.procs /shell/cgroup.subtree_control /shell/cgroup.threads; do
  chown {user.uid}:{user.gid} {deleg}$f
done
set +e
echo $$ > {deleg}/shell/cgroup.procs
{as_user} {w}/user1.sh 2>&1
echo $$ > {nodeleg}/cgroup.procs
{as_user} {w}/user2.sh 2>&1
echo $$ > /sys/fs/cgroup/cgroup.procs
rmdir {deleg}/shell {deleg} {nodeleg}
echo '<<cleanup>>'; ls -d {deleg} {nodeleg} 2>&1; echo '<</cleanup>>'
"""
    rc, out = run_in_guest(script, timeout=1200)
    print(out)
    assert rc == 0, out[-4000:]

    # 1. the judge: limits applied in the delegated subtree, final figures readable
    j = _between(out, "judge")
    lines = j.split()
    assert lines[:4] == [str(32 * MIB), "32", "50000", "100000"], j
    assert "survived" in j and "rc=0" in j, j
    assert _between(out, "cgdir").strip() == f"{deleg}/ocirt-judge", out
    usage = json.loads(_between(out, "usage"))
    assert usage["oom_kills"] >= 1, usage
    assert usage["cpu"]["total_ns"] > 0, usage
    assert MIB <= usage["memory"]["peak_bytes"] <= 32 * MIB, usage
    assert usage["memory"]["limit_bytes"] == 32 * MIB, usage
    assert usage["exit_status"] == 0, usage
    stats = json.loads(_between(out, "stats").strip().splitlines()[-1])
    assert stats["type"] == "stats" and stats["id"] == "judge", stats
    assert stats["data"]["memory"]["usage"]["limit"] == 32 * MIB, stats
    assert stats["data"]["pids"]["limit"] == 32, stats
    assert _between(out, "after").split() == [f"{deleg}/shell"], "delete removed the cgroup"
    # run_measured as the user: the same verdict in one call, and a wall limit
    m = _between(out, "measured")
    v = json.loads(re.search(r"^verdict (.*)$", m, re.M).group(1))
    assert v["exit_code"] == 0 and v["oom_killed"] is True and v["timed_out"] is False, m
    assert MIB <= v["peak_memory"] <= 32 * MIB and v["cpu_user"] > 0, m
    assert v["pids_peak"] is None or 1 <= v["pids_peak"] <= 32, m
    t = json.loads(re.search(r"^walled (.*)$", m, re.M).group(1))
    assert t["timed_out"] is True and t["signal"] == 9 and 2 <= t["wall_time"] < 60, m

    # 2. no delegation: a limit fails naming its field; no limits runs
    d = _between(out, "denied")
    assert "linux.resources.memory.limit" in d and "rootless" in d and "rc=1" in d, d
    assert len([ln for ln in d.splitlines() if ln.startswith("ocirt:")]) == 1, d
    p = _between(out, "plain")
    assert "plain-ok" in p and "rc=0" in p, p
    assert _between(out, "left").strip() == "", "nothing left in the state root"
    assert "No such file" in _between(out, "cleanup"), out
