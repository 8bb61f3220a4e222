"""linux.seccomp (config-linux.md "Seccomp"), for real: the filter is loaded in the
container process and the kernel enforces it.

Every action, every operator, defaultErrnoRet, architectures, flags, the
SCMP_ACT_NOTIFY listener protocol (the seccomp agent receives the notify fd with
the container process state), Docker's default profile, the load point (after
no_new_privs, as the last step), and the errors.
"""
import copy
import errno
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import threading

import pytest

from helpers import assert_error

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SIGSYS_STATUS = 128 + 31


def docker_profile():
    with open(os.path.join(DATA, "docker-default-seccomp.json")) as f:
        return json.load(f)


def docker_caps():
    return ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
            "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def with_seccomp(b, spec, nnp=True, writable=True):
    b.linux["seccomp"] = spec
    b.process["noNewPrivileges"] = nnp
    if writable:
        b.config["root"]["readonly"] = False
    return b


def deny(names, action="SCMP_ACT_ERRNO", **extra):
    rule = {"names": list(names), "action": action}
    rule.update(extra)
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}


# --- actions ---------------------------------------------------------------------------

@pytest.mark.parametrize("nnp", [True, False])
def test_errno_with_errno_ret(ocirt, bundle, nnp):
    with_seccomp(bundle, deny(["mkdir", "mkdirat"], errnoRet=errno.EACCES), nnp=nnp)
    r = ocirt.run_sh(bundle, "mkdir /tmp/x; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' "
                     "/proc/self/status").ok()
    assert "rc=1" in r.stdout
    assert "Permission denied" in r.stderr
    assert "Seccomp:\t2" in r.stdout
    assert f"NoNewPrivs:\t{int(nnp)}" in r.stdout


def test_errno_default_is_eperm(ocirt, bundle):
    with_seccomp(bundle, deny(["mkdir", "mkdirat"]))
    r = ocirt.run_sh(bundle, "mkdir /tmp/x; echo rc=$?").ok()
    assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr


def test_allow_rule_under_errno_default(ocirt, bundle):
    # Docker's profile: default ERRNO(EPERM), a list of allowed syscalls
    with_seccomp(bundle, docker_profile())
    r = ocirt.run_sh(bundle, "echo hello; ls / >/dev/null && echo listed").ok()
    assert r.stdout.split() == ["hello", "listed"]


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_actions(ocirt, bundle, action):
    with_seccomp(bundle, deny(["mkdir", "mkdirat"], action))
    # the subshell forks: it dies of SIGSYS, the outer shell reports it
    r = ocirt.run_sh(bundle, "(mkdir /tmp/x); echo status=$?; test -d /tmp/x || echo absent")
    r.ok()
    assert f"status={SIGSYS_STATUS}" in r.stdout
    assert "absent" in r.stdout


def test_kill_process_ends_the_container_process(ocirt, bundle):
    with_seccomp(bundle, deny(["mkdir", "mkdirat"], "SCMP_ACT_KILL_PROCESS"))
    bundle.args("mkdir", "/tmp/x").write()
    r = ocirt.run(ocirt.new_id(), bundle)
    assert r.returncode == SIGSYS_STATUS, r


def test_trace_without_tracer_is_enosys(ocirt, bundle):
    with_seccomp(bundle, deny(["chmod", "fchmodat"], "SCMP_ACT_TRACE"))
    r = ocirt.run_sh(bundle, "chmod 700 /tmp; echo rc=$?").ok()
    assert "rc=1" in r.stdout and "Function not implemented" in r.stderr


def test_trace_errno_ret_is_accepted(ocirt, bundle):
    with_seccomp(bundle, deny(["chmod", "fchmodat"], "SCMP_ACT_TRACE", errnoRet=5))
    r = ocirt.run_sh(bundle, "chmod 700 /tmp; echo rc=$?").ok()
    assert "rc=1" in r.stdout  # no tracer: ENOSYS whatever the message number


def _kmsg_lines():
    p = subprocess.run(["dmesg"], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return p.stdout.splitlines()


def test_log_allows_and_logs(ocirt, bundle):
    before = _kmsg_lines()
    with_seccomp(bundle, deny(["mkdir", "mkdirat"], "SCMP_ACT_LOG"))
    r = ocirt.run_sh(bundle, "mkdir /tmp/logged && echo made").ok()
    assert "made" in r.stdout
    after = _kmsg_lines()
    if before is None or after is None:
        pytest.skip("dmesg is not readable: the log line can't be checked")
    old = set(before)  # each line carries its timestamp: new lines are new
    new = [l for l in after if l not in old and "type=1326" in l and "code=0x7ffc0000" in l
           and 'comm="mkdir"' in l]
    assert new, "no seccomp log line (audit type 1326, SECCOMP_RET_LOG) in the kernel log"


def test_allow_default_with_errno_default_ret(ocirt, bundle):
    prof = docker_profile()
    prof["defaultErrnoRet"] = errno.EOPNOTSUPP
    with_seccomp(bundle, prof)
    bundle.process["capabilities"] = {s: docker_caps() for s in
                                      ("bounding", "effective", "permitted")}
    r = ocirt.run_sh(bundle, "unshare -U true; echo rc=$?").ok()
    assert "rc=1" in r.stdout and "not supported" in r.stderr.lower()


# --- Docker's default profile ------------------------------------------------------------

def test_docker_default_profile(ocirt, bundle):
    """Docker's default profile, as Docker writes it into config.json, loads and works:
    ordinary programs run, what it forbids is refused (here unshare, which needs no
    capability for a user namespace and is only allowed with CAP_SYS_ADMIN)."""
    bundle.process["capabilities"] = {s: docker_caps() for s in
                                      ("bounding", "effective", "permitted")}
    script = ("echo hi; cat /etc/passwd >/dev/null && echo cat; ps >/dev/null && echo ps; "
              "sleep 0.01 && echo slept; unshare -U true; echo unshare=$?")
    plain = ocirt.run_sh(bundle, script).ok()
    assert "unshare=0" in plain.stdout, "without seccomp a user namespace can be made"
    with_seccomp(bundle, docker_profile(), nnp=False)
    r = ocirt.run_sh(bundle, script).ok()
    assert r.stdout.split() == ["hi", "cat", "ps", "slept", "unshare=1"]
    assert "Operation not permitted" in r.stderr


def test_docker_default_profile_with_exec(ocirt, bundle):
    bundle.process["capabilities"] = {s: docker_caps() for s in
                                      ("bounding", "effective", "permitted")}
    with_seccomp(bundle, docker_profile())
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, bundle, "-d").ok()
    r = ocirt("exec", cid, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true; "
              "echo rc=$?").ok()
    assert "Seccomp:\t2" in r.stdout and "rc=1" in r.stdout
    ocirt.delete(cid, "--force").ok()


# --- arguments: every operator -----------------------------------------------------------

def _renice_script(values):
    # renice -n N on a fresh shell: setpriority(PRIO_PROCESS, pid, N), N = arg 2
    return "; ".join(f'sh -c "renice -n {n} -p \\$\\$ >/dev/null 2>&1; echo {n}=\\$?"'
                     for n in values)


def _blocked(ocirt, bundle, args, values=(3, 5, 6, 10, 12)):
    with_seccomp(bundle, deny(["setpriority"], args=args))
    r = ocirt.run_sh(bundle, _renice_script(values)).ok()
    res = dict(line.split("=") for line in r.stdout.split())
    return sorted(int(n) for n, rc in res.items() if rc != "0")


@pytest.mark.parametrize("op,value,value2,blocked", [
    ("SCMP_CMP_EQ", 5, 0, [5]),
    ("SCMP_CMP_NE", 5, 0, [3, 6, 10, 12]),
    ("SCMP_CMP_LT", 6, 0, [3, 5]),
    ("SCMP_CMP_LE", 6, 0, [3, 5, 6]),
    ("SCMP_CMP_GT", 6, 0, [10, 12]),
    ("SCMP_CMP_GE", 6, 0, [6, 10, 12]),
    # (arg & value) == valueTwo: 0b0100 set and 0b0001 clear -> 6 (0110), 12 (1100)
    ("SCMP_CMP_MASKED_EQ", 0b0101, 0b0100, [6, 12]),
])
def test_arg_operators(ocirt, bundle, op, value, value2, blocked):
    arg = {"index": 2, "value": value, "op": op}
    if value2:
        arg["valueTwo"] = value2
    assert _blocked(ocirt, bundle, [arg]) == blocked


def test_args_on_different_indexes_are_anded(ocirt, bundle):
    args = [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},   # PRIO_PROCESS
            {"index": 2, "value": 5, "op": "SCMP_CMP_EQ"}]
    assert _blocked(ocirt, bundle, args) == [5]
    args[0]["value"] = 1  # PRIO_PGRP: never true, so nothing is blocked
    assert _blocked(ocirt, bundle, args) == []


def test_args_on_the_same_index_are_ored(ocirt, bundle):
    args = [{"index": 2, "value": 5, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 10, "op": "SCMP_CMP_EQ"}]
    assert _blocked(ocirt, bundle, args) == [5, 10]


# --- architectures and flags ---------------------------------------------------------------

def test_architectures_without_native_still_filter_native(ocirt, bundle):
    spec = deny(["mkdir", "mkdirat"])
    spec["architectures"] = ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    with_seccomp(bundle, spec)
    r = ocirt.run_sh(bundle, "mkdir /tmp/x; echo rc=$?").ok()
    assert "rc=1" in r.stdout


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
def test_flags(ocirt, bundle, flag):
    spec = deny(["mkdir", "mkdirat"])
    spec["flags"] = [flag]
    with_seccomp(bundle, spec)
    r = ocirt.run_sh(bundle, "mkdir /tmp/x; echo rc=$?").ok()
    assert "rc=1" in r.stdout


ENOSYS_C = r"""
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long a = syscall(1000, 0xDEADBEEF, 0xCAFEFEED, 0x1337);  /* above the profile's */
    int e1 = errno;
    long b = syscall(SYS_getppid);                            /* refused by a rule */
    printf("%ld %d %ld %d\n", a, e1, b, errno);
    return 0;
}
"""


def test_syscall_newer_than_the_profile_is_enosys(ocirt, bundle, tmp_path):
    """Docker's profile (default ERRNO): a syscall numbered above every one it names
    fails with ENOSYS, not EPERM, so libc's fallbacks work (runc's behaviour); one the
    profile refuses still gets its errno."""
    src = tmp_path / "enosys.c"
    src.write_text(ENOSYS_C)
    out = os.path.join(bundle.rootfs, "enosys")
    p = subprocess.run(["gcc", "-static", "-o", out, str(src)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"no static C toolchain here: {p.stderr.decode()[-200:]}")
    spec = docker_profile()
    spec["syscalls"].append({"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EACCES})
    for rule in spec["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and "getppid" in rule["names"]:
            rule["names"] = [n for n in rule["names"] if n != "getppid"]
    with_seccomp(bundle, spec)
    bundle.args("/enosys").write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    assert r.stdout.split() == ["-1", str(errno.ENOSYS), "-1", str(errno.EACCES)], r


def test_flags_in_the_debug_log(ocirt, bundle):
    """runc's debug line with the numeric flags: none given means SPEC_ALLOW (4) where
    the kernel has it, [] means 0, TSYNC is not needed by a one-thread init (0)."""
    for flags, want in ((None, ("4", "0")), ([], ("0",)), (["SECCOMP_FILTER_FLAG_TSYNC"], ("0",)),
                        (["SECCOMP_FILTER_FLAG_LOG"], ("2",))):
        spec = deny(["mkdir", "mkdirat"])
        if flags is not None:
            spec["flags"] = flags
        with_seccomp(bundle, spec)
        bundle.sh("mkdir /tmp/x 2>/dev/null; echo rc=$?").write()
        r = ocirt("run", "--bundle", bundle.path, ocirt.new_id(), global_flags=("--debug",))
        assert "rc=1" in r.ok().stdout
        assert any(f'seccomp filter flags: {w}"' in r.stderr for w in want), (flags, r.stderr)


# --- where the filter is loaded -------------------------------------------------------------

def test_loaded_after_no_new_privs_as_the_last_step(ocirt, bundle):
    """With noNewPrivileges the filter comes after everything init does: a filter
    refusing prctl(PR_SET_NO_NEW_PRIVS), capset, setresuid, setgroups and chdir
    doesn't stop the container from starting (it would if loaded earlier)."""
    spec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["prctl"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]},
        {"names": ["capset", "setresuid", "setresgid", "setgroups", "chdir", "umask"],
         "action": "SCMP_ACT_ERRNO"}]}
    with_seccomp(bundle, spec)
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["cwd"] = "/tmp"
    r = ocirt.run_sh(bundle, "id -u; pwd; grep NoNewPrivs: /proc/self/status").ok()
    assert r.stdout.split() == ["1000", "/tmp", "NoNewPrivs:", "1"]


# --- SCMP_ACT_NOTIFY and the seccomp agent ------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


class Agent:
    """A seccomp agent: receives the notify fd and the container process state on
    a unix socket (as runc sends them), then answers every notification with
    -`answer_errno`."""

    def __init__(self, path, answer_errno=errno.ENOSPC, connections=1):
        self.path = path
        self.answer = answer_errno
        self.messages = []
        self.notifications = []
        self.errors = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.threads = []
        self.t = threading.Thread(target=self._accept, args=(connections,), daemon=True)
        self.t.start()

    def _accept(self, n):
        for _ in range(n):
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            msg, fds, _flags, _addr = socket.recv_fds(c, 65536, 4)
            c.close()
            self.messages.append((json.loads(msg), len(fds)))
            t = threading.Thread(target=self._serve, args=(fds[0],), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, fd):
        try:
            while True:
                p = select.poll()
                p.register(fd, select.POLLIN)
                ev = p.poll(20000)
                if not ev or ev[0][1] & (select.POLLHUP | select.POLLERR):
                    return
                buf = bytearray(80)
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
                nid, pid, _fl, nr = struct.unpack_from("=QIIi", buf)
                self.notifications.append((pid, nr))
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND,
                            bytearray(struct.pack("=QqiI", nid, 0, -self.answer, 0)), True)
        except OSError as e:
            if e.errno != errno.ENOENT:
                self.errors.append(e)
        finally:
            os.close(fd)

    def close(self):
        self.sock.close()
        for t in self.threads:
            t.join(5)


@pytest.fixture
def agent_path(tmp_path):
    return str(tmp_path / "agent.sock")


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_sends_fd_and_state_to_the_agent(ocirt, bundle, agent_path, nnp):
    agent = Agent(agent_path)
    spec = deny(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")
    spec["listenerPath"] = agent_path
    spec["listenerMetadata"] = "name=test,answer=ENOSPC"
    bundle.config["annotations"] = {"org.example": "yes"}
    with_seccomp(bundle, spec, nnp=nnp)
    bundle.sh("mkdir /tmp/x; echo rc=$?").write()
    cid = ocirt.new_id()
    r = ocirt.run(cid, bundle).ok()
    agent.close()
    assert "rc=1" in r.stdout and "No space left on device" in r.stderr
    assert not agent.errors
    assert len(agent.messages) == 1
    msg, nfds = agent.messages[0]
    assert nfds == 1
    assert msg["fds"] == ["seccompFd"]
    assert msg["metadata"] == "name=test,answer=ENOSPC"
    assert msg["ociVersion"].startswith("1.")
    st = msg["state"]
    assert st["id"] == cid and st["status"] == "creating" and st["bundle"] == bundle.path
    assert st["pid"] == msg["pid"] > 0
    assert st["annotations"] == {"org.example": "yes"}
    assert agent.notifications, "the agent answered no notification"
    assert all(nr in (83, 258) for _pid, nr in agent.notifications)  # mkdir, mkdirat


def test_notify_wait_killable_recv(ocirt, bundle, agent_path):
    agent = Agent(agent_path)
    spec = deny(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")
    spec["listenerPath"] = agent_path
    spec["flags"] = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"]
    with_seccomp(bundle, spec)
    r = ocirt.run_sh(bundle, "mkdir /tmp/x; echo rc=$?").ok()
    agent.close()
    assert "rc=1" in r.stdout and "No space left" in r.stderr


def test_notify_for_exec_processes(ocirt, bundle, agent_path):
    agent = Agent(agent_path, connections=2)
    spec = deny(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")
    spec["listenerPath"] = agent_path
    with_seccomp(bundle, spec)
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, bundle, "-d").ok()
    r = ocirt("exec", cid, "sh", "-c", "mkdir /tmp/y; echo rc=$?").ok()
    assert "rc=1" in r.stdout and "No space left" in r.stderr
    ocirt.delete(cid, "--force").ok()
    agent.close()
    assert len(agent.messages) == 2
    exec_msg = agent.messages[1][0]
    assert exec_msg["state"]["status"] == "running"
    assert exec_msg["pid"] != exec_msg["state"]["pid"]


def test_notify_listener_missing_fails_create(ocirt, bundle, tmp_path):
    spec = deny(["mkdir"], "SCMP_ACT_NOTIFY")
    spec["listenerPath"] = str(tmp_path / "nobody-listens.sock")
    with_seccomp(bundle, spec)
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.seccomp.listenerPath")


# --- names libseccomp doesn't know; errors ------------------------------------------------------

def test_unknown_syscall_is_skipped_with_a_warning(ocirt, bundle, tmp_path):
    spec = deny(["no_such_syscall_xyz", "mkdir", "mkdirat"])
    with_seccomp(bundle, spec)
    log = tmp_path / "log.json"
    bundle.sh("mkdir /tmp/x; echo rc=$?").write()
    r = ocirt.run(ocirt.new_id(), bundle, global_flags=("--log", str(log), "--log-format",
                                                        "json")).ok()
    assert "rc=1" in r.stdout
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    warn = [l for l in lines if l["level"] == "warning"]
    assert warn and "linux.seccomp.syscalls[0].names[0]" in warn[0]["msg"]
    assert "no_such_syscall_xyz" in warn[0]["msg"]


BAD = [
    ("errnoRet with ALLOW", lambda s: s["syscalls"][0].update(action="SCMP_ACT_ALLOW",
                                                             errnoRet=1),
     "linux.seccomp.syscalls[0].errnoRet"),
    ("errnoRet too big", lambda s: s["syscalls"][0].update(errnoRet=70000),
     "linux.seccomp.syscalls[0].errnoRet"),
    ("notify without listener", lambda s: s["syscalls"][0].update(action="SCMP_ACT_NOTIFY"),
     "linux.seccomp.listenerPath"),
    ("notify as default", lambda s: s.update(defaultAction="SCMP_ACT_NOTIFY",
                                             listenerPath="/x"),
     "linux.seccomp.defaultAction"),
    ("notify on sendmsg", lambda s: (s.update(listenerPath="/x"), s["syscalls"][0].update(
        action="SCMP_ACT_NOTIFY", names=["sendmsg"])), "linux.seccomp.syscalls[0].names[0]"),
    ("arg index 6", lambda s: s["syscalls"][0].update(
        args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     "linux.seccomp.syscalls[0].args[0].index"),
    ("bad op", lambda s: s["syscalls"][0].update(
        args=[{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]),
     "linux.seccomp.syscalls[0].args[0].op"),
    ("bad action", lambda s: s["syscalls"][0].update(action="SCMP_ACT_MAYBE"),
     "linux.seccomp.syscalls[0].action"),
    ("no names", lambda s: s["syscalls"][0].update(names=[]),
     "linux.seccomp.syscalls[0].names"),
    ("bad arch", lambda s: s.update(architectures=["SCMP_ARCH_Z80"]),
     "linux.seccomp.architectures[0]"),
    ("bad flag", lambda s: s.update(flags=["SECCOMP_FILTER_FLAG_FAST"]),
     "linux.seccomp.flags[0]"),
    ("defaultErrnoRet with ALLOW", lambda s: s.update(defaultErrnoRet=1),
     "linux.seccomp"),
    ("listenerMetadata alone", lambda s: s.update(listenerMetadata="x"), "linux.seccomp"),
]


@pytest.mark.parametrize("name,mutate,field", BAD, ids=[b[0] for b in BAD])
def test_bad_seccomp_is_a_config_error(ocirt, bundle, name, mutate, field):
    spec = copy.deepcopy(deny(["mkdir"]))
    mutate(spec)
    with_seccomp(bundle, spec)
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), field)
