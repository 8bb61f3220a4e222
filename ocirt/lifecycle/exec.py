"""exec: run a new process in a running (or created) container.

The process is the container's config.json `process` with the command line's
overrides (runc's rules), or a process JSON file (--process) whose missing
capabilities, noNewPrivileges, rlimits, apparmorProfile, selinuxLabel, ioPriority
and scheduler fall back to the container's. It joins every namespace of the
container and its cgroup and gets the container's seccomp filter.

Foreground: the exit status of the process (128+N if killed by signal N), with a
terminal relayed to the caller's when --tty has no --console-socket.
--detach: returns once the process has exec'd; its pid goes to --pid-file.
"""
import os
import _signal as signal
import time

from .. import OCI_VERSION
from .. import capabilities, config, status as S
from ..errors import ConfigError, OcirtError
from ..process import common
from ..process.common import (caller_fds, listen_fds, reap_status as _reap,
                              wait_status as _wait_for)
from ..lazy import (attrs, cgroups, container, intelrdt, jsonfast, lifecycle_create, mempolicy,
                    need, process_exec, seccomp, stdsocket, syscalls, terminal)

# process fields that, absent from a --process file, come from config.json
_INHERITED = ("capabilities", "noNewPrivileges", "rlimits", "apparmorProfile",
              "selinuxLabel", "ioPriority", "scheduler", "oomScoreAdj")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
              signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def parse_user(text):
    uid, sep, gid = text.partition(":")
    try:
        u = int(uid)
        g = int(gid) if sep else None
        if u < 0 or (g is not None and g < 0) or u > 0xFFFFFFFE or (g or 0) > 0xFFFFFFFE:
            raise ValueError
    except ValueError:
        raise OcirtError(f"--user {text!r}: use UID[:GID] (numbers)") from None
    return u, g


def build_process(cfg, process_file=None, args=(), tty=False, env=(), cwd=None, user=None,
                  additional_gids=(), caps=(), no_new_privs=None, apparmor=None,
                  process_label=None):
    """The process spec to run, and the prefix to name its fields in errors."""
    base = cfg.get("process") or {}
    if process_file:
        where = "process"
        try:
            with open(process_file, "rb") as f:
                raw = f.read()
            p = jsonfast.loads(raw)
        except OSError as e:
            raise OcirtError(f"--process {process_file}: {e.strerror}") from None
        except ValueError as e:
            raise OcirtError(f"--process {process_file}: not valid JSON: {e}") from None
        if not isinstance(p, dict):
            raise OcirtError(f"--process {process_file}: must be a JSON object")
        try:
            if b"\\u0000" in raw:
                config.check_no_nul(p, "process")
            config.check({"ociVersion": cfg.get("ociVersion") or OCI_VERSION,
                          "root": {"path": "rootfs"}, "process": p})
        except ConfigError as e:
            raise OcirtError(f"--process {process_file}: {e}") from None
        proc = dict(p)
        for k in _INHERITED:
            if proc.get(k) in (None, "", []) and k in base:
                proc[k] = base[k]
    else:
        where = "process"
        if not args:
            raise OcirtError("exec args cannot be empty")
        proc = jsonfast.loads(jsonfast.dumps(base))
        proc["args"] = list(args)
        proc["terminal"] = bool(tty)
        proc.pop("consoleSize", None)
    if process_file and tty:
        proc["terminal"] = True
    if cwd:
        proc["cwd"] = cwd
    if env:
        proc["env"] = list(proc.get("env") or []) + list(env)
    if user:
        u, g = parse_user(user)
        proc.setdefault("user", {})
        proc["user"] = dict(proc["user"], uid=u)
        if g is not None:
            proc["user"]["gid"] = g
    if additional_gids:
        gids = []
        for x in additional_gids:
            try:
                gids.append(int(x))
                if gids[-1] < 0:
                    raise ValueError
            except ValueError:
                raise OcirtError(f"--additional-gids {x!r}: must be a number") from None
        proc["user"] = dict(proc.get("user") or {})
        proc["user"]["additionalGids"] = list(proc["user"].get("additionalGids") or []) + gids
    if caps:
        c = {k: list(v or []) for k, v in (proc.get("capabilities") or {}).items()}
        for name in caps:
            name = name.upper()
            if not name.startswith("CAP_"):
                name = "CAP_" + name
            for s in ("bounding", "effective", "permitted"):
                c.setdefault(s, []).append(name)
            if c.get("inheritable"):
                c.setdefault("ambient", []).append(name)
        proc["capabilities"] = c
    if no_new_privs:
        proc["noNewPrivileges"] = True
    if apparmor:
        proc["apparmorProfile"] = apparmor
    if process_label:
        proc["selinuxLabel"] = process_label
    if not proc.get("args"):
        raise ConfigError(f"{where}.args", "must name the program to run")
    if not str(proc.get("cwd") or "/").startswith("/"):
        raise ConfigError(f"{where}.cwd", "must be an absolute path")
    return proc, where


def exec_process(cid, opts=None, args=(), process_file=None, tty=False, detach=False,
                 pid_file=None, console_socket=None, env=(), cwd=None, user=None,
                 additional_gids=(), caps=(), no_new_privs=None, preserve_fds=0,
                 apparmor=None, process_label=None, ignore_paused=False, sub_cgroups=(),
                 pidfd_socket=None):
    if pid_file:
        lifecycle_create.check_pid_file(pid_file)
    c = container.Container.load(opts, cid)
    st = c.state
    if ignore_paused and c.status() == S.PAUSED:
        _wait_resumed(c)
    c.require(S.EXEC)
    saved = st.exec
    if saved:  # the config as it was at create
        cfg = {"ociVersion": saved["ociVersion"], "process": saved["process"],
               "linux": {"namespaces": [{"type": t} for t in saved["namespaces"]],
                         "seccomp": saved["seccomp"]}}
        if not saved["seccomp"]:
            del cfg["linux"]["seccomp"]
        for key in ("memoryPolicy", "personality"):
            if saved.get(key):
                cfg["linux"][key] = saved[key]
    else:
        cfg = config.load(st.bundle)
    proc, where = build_process(cfg, process_file, args, tty, env, cwd, user,
                                additional_gids, caps, no_new_privs, apparmor, process_label)
    if proc.get("terminal") and not console_socket and detach:
        raise OcirtError("exec --tty --detach needs --console-socket (nothing would hold "
                         "the terminal)")
    if console_socket and not proc.get("terminal"):
        raise OcirtError("--console-socket given but the process has no terminal "
                         "(use --tty)")

    need(attrs)  # everything the child uses, loaded now (process.common is already)
    attrs.check(proc, where)
    capabilities.parse(proc.get("capabilities"), f"{where}.capabilities", warn=True)
    linux = cfg.get("linux") or {}
    ctx = process_exec.ExecContext(proc, st.pid, [n["type"] for n in linux.get("namespaces") or []],
                      where)
    ctx.init_start = st.init_start
    ctx.preserve_fds = preserve_fds + listen_fds()
    ctx.close_in_child = caller_fds(3 + ctx.preserve_fds)
    if linux.get("seccomp"):
        ctx.seccomp = seccomp.build_filter(linux["seccomp"])
    ctx.personality = linux.get("personality")
    if linux.get("memoryPolicy"):  # exec'd processes get the container's policy too
        ctx.mempolicy = mempolicy.parse(linux["memoryPolicy"])
    mine = None
    if proc.get("terminal"):
        need(terminal)  # the child hands the pty over inside the container's mounts
        if console_socket:
            ctx.console_conn = terminal.connect_console(console_socket)
        else:
            mine, ctx.console_conn = stdsocket.socketpair(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
            ctx.relay_terminal = True
    if not detach:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)  # the process is reparented to us
    cg = st.cgroup
    sub = None
    if sub_cgroups:
        sub = cgroups.sub_cgroups(list(sub_cgroups))
        if not cg:
            raise OcirtError(f"--cgroup: container {cid} has no cgroup")
    pidfd_conn = None
    if pidfd_socket:
        pidfd_conn = common.connect_unix(pidfd_socket, "--pidfd-socket")

    def on_joiner(pid):
        if cg:
            cgroups.restore(cg).join(pid, sub)
        if st.intelrdt:  # exec'd processes share the container's RDT group
            intelrdt.add_exec_pid(st.intelrdt, pid)
        attrs.reset_affinity(pid)  # after the cpuset join, which sets its own
        attrs.set_affinity(pid, proc, "initial", where)

    def on_seccomp_fd(fd, pid):
        s = c.oci_state()
        s["pid"] = st.pid
        ctx.seccomp.send_to_listener(fd, s, pid)

    # signals for the process are caught from now on and forwarded once it runs
    target, pending, old = [], [], {}
    if not detach:
        def on_signal(num, _frame):
            if target:
                _forward(target[0], num)
            else:
                pending.append(num)
        for s in _FORWARDED:
            old[s] = signal.signal(s, on_signal)
    try:
        ctx.open_namespaces()
        pid = process_exec.spawn(ctx, on_joiner, on_seccomp_fd)
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        ctx.close()
        if mine is not None:
            mine.close()
        if ctx.console_conn is not None:
            ctx.console_conn.close()
        raise
    master = None
    if mine is not None:
        master = terminal.recv_master(mine, block=False)
        mine.close()
    if pid_file:
        lifecycle_create._write_pid_file(pid_file, pid)
    if pidfd_conn is not None:
        common.send_pidfd(pidfd_conn, pid, "setns")
    if detach:
        return 0
    target.append(pid)
    for num in pending:
        _forward(pid, num)
    try:
        if master is not None:
            try:
                return terminal.relay(master, lambda: _reap(pid))
            finally:
                os.close(master)
        return _wait_for(pid)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


PAUSED_WAIT = 60.0  # s exec --ignore-paused waits for a resume


def _wait_resumed(c):
    """exec --ignore-paused: wait until the container is resumed (a process moved into
    a frozen cgroup would freeze midway through its set-up), at most PAUSED_WAIT."""
    deadline = time.monotonic() + PAUSED_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.05)
        status = c.status()
        if status != S.PAUSED:
            return status
    raise OcirtError(f"exec --ignore-paused: container {c.id} was still paused after "
                     f"{PAUSED_WAIT:.0f} s")


def _forward(pid, num):
    try:
        os.kill(pid, num)
    except ProcessLookupError:
        pass

