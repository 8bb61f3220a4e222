"""The finalize sequence: the last stretch of every container process, from a
process that is in the container's namespaces to its execve. One sequence for
the container's init (process/init.py) and for a process `ocirt exec` starts in a
running container (process/exec.py), so a fix to one is a fix to both.

    prepare(plan)   process attributes that need no filesystem. Init calls it
                    before its mounts (the host's /proc is still there, and its
                    hooks and set-up run with them); exec right after joining.
    finalize(plan)  everything after, up to execve; never returns.

`plan` is a Plan: the process spec, the field prefix for errors ("process", or
exec's own) and the few steps init and exec do differently, as methods a
subclass (init.py's `InitPlan`, exec.py's `ExecPlan`) overrides. The steps, in
order (the order is runc's: libcontainer/standard_init_linux.go and
setns_init_linux.go, with finalizeNamespace in init_linux.go):

prepare
 P1 oomScoreAdj           both; root writes it before anything limits it.
 P2 linux.personality     both (exec's is the container's, saved at create).
 P3 session keyring       init only (unless --no-new-keyring); exec keeps the
                          caller's (runc's exec joins the container's ring:
                          ocirt has never done that).
 P4 ioPriority, scheduler both, as root: real-time classes need CAP_SYS_NICE.
 P5 execCPUAffinity.final exec only: the spec says it does not apply to init
                          (initial is set by exec's parent, on the joiner).
finalize
 F1 terminal              exec makes its pty here (`Plan.terminal`); init made
                          its own before the rootfs became read-only (it binds
                          it on /dev/console) and does nothing here.
 F2 rlimits               both; after the set-up's own fds (a low RLIMIT_NOFILE
                          must not fail them) and, as with runc (which sets
                          them from the parent at "ready"), after the scheduler.
 F3 linux.memoryPolicy    both (exec: the container's); kept through execve.
 F4 identity              both: cwd entered as root first, the bounding set,
                          keep-caps, groups (not where the user namespace denies
                          setgroups), gid, uid, keep-caps off, umask, cwd as the
                          user.
 F5 env, args[0]          both: HOME from the container's /etc/passwd, args[0]
                          through the container's PATH, so a missing binary is
                          named before init reports ready.
 F6 fds and labels        both: every fd but stdio and the preserved ones
                          (--preserve-fds, LISTEN_FDS) is close-on-exec (the
                          caller's other fds were closed right after the fork);
                          AppArmor/SELinux labels written "on exec".
 F7 before the filter     `Plan.before_filter`: init gives back its code pages
                          and makes terminating signals end it (parked as pid 1
                          it would ignore them); exec logs "setns_init: about to
                          exec". Here because a seccomp filter may refuse them.
 F8 seccomp, capabilities both: without noNewPrivileges the filter is loaded
                          while CAP_SYS_ADMIN is still effective, then the
                          capability sets; with it, no_new_privs and then the
                          filter, last. A notify filter's fd goes to the parent
                          over the channel either way (init's parent sends it
                          to the agent with the container's state, exec's with
                          the exec'd process's pid).
 F9 hand-off              `Plan.handoff`: init says "ready", waits for `start`
                          on exec.sock and runs the startContainer hooks; exec
                          goes straight on.
 F10 execve               both; a failure is `Plan.exec_failed`'s: init prints it
                          on the container's stderr and answers `start`; exec
                          raises it and its parent prints it.
"""
import os

from .. import capabilities, syscalls as sc
from ..errors import ConfigError, OcirtError
from . import attrs
from .common import close_on_exec_but, enter_cwd, environ, exec_error, resolve_exe
from .common import set_rlimits, try_chdir
from ..lazy import mempolicy

RLIMIT_HINT = " (raising a hard limit needs CAP_SYS_RESOURCE)"


class Plan:
    """What the sequence is given. The methods are the steps that differ; as they
    stand here they are exec's (init.py's InitPlan overrides them)."""

    keyring = False         # P3: join a new session keyring
    final_affinity = False  # P5: execCPUAffinity.final

    def __init__(self, chan, proc, where="process", *, debug=False, seccomp=None,
                 preserve_fds=0, setgroups_denied=False, mempolicy=None, personality=None):
        self.chan = chan                  # to the parent: debug lines, seccomp notify fd
        self.proc = proc                  # the process spec
        self.where = where                # field prefix in errors
        self.debug = debug                # --debug: lines go to the parent's log
        self.seccomp = seccomp            # seccomp.Filter or None
        self.preserve_fds = preserve_fds  # fds after stdio kept across execve
        self.setgroups_denied = setgroups_denied
        self.mempolicy = mempolicy        # mempolicy.parse() of linux.memoryPolicy
        self.personality = personality    # linux.personality

    def terminal(self):
        """F1: the process's terminal, if it has one made here."""

    def before_filter(self, argv0):
        """F7: the last syscalls that a seccomp filter might refuse."""

    def handoff(self, env):
        """F9: between the filter and execve."""

    def exec_failed(self, arg0, err):
        """F10: execve failed with the OSError `err`; must not return normally."""
        raise OcirtError(exec_error(arg0, err)) from None


def prepare(plan):
    proc, w = plan.proc, plan.where
    # P1: before the uid change and the capability drop: lowering it needs
    # CAP_SYS_RESOURCE (runc writes it first of all, in nsexec)
    if "oomScoreAdj" in proc:
        sc.write_control("/proc/self/oom_score_adj", str(proc["oomScoreAdj"]), f"{w}.oomScoreAdj")
    # P2: the execution domain, inherited by everything the process starts
    attrs.apply_personality(plan.personality)
    # P3: a keyring of the container's own, not the caller's session keyring
    if plan.keyring:
        try:
            sc.join_session_keyring(None)
        except OSError:
            pass  # keyrings may be unavailable (e.g. in some user namespaces); runc ignores it too
    # P4: as root, before capabilities are dropped (real-time classes and policies
    # need CAP_SYS_NICE / CAP_SYS_ADMIN)
    attrs.apply_sched(proc, w)
    # P5: the CPUs the process runs on from now on (the parent set the initial ones)
    if plan.final_affinity:
        attrs.set_affinity(0, proc, "final", w)


def finalize(plan):
    """F1..F10; execs, raises, or exits through the plan's hooks."""
    proc, w = plan.proc, plan.where
    # F1: the terminal before anything is dropped: taking the pty as the
    # controlling terminal and giving it to the user need root
    plan.terminal()
    # F2: rlimits now, not before: the set-up's own fds are done (a low NOFILE
    # cannot fail it); still as root, since raising a hard limit needs
    # CAP_SYS_RESOURCE
    set_rlimits(proc.get("rlimits"), w, RLIMIT_HINT)
    # F3: the memory policy last of the process attributes: it is kept through execve
    if plan.mempolicy is not None:
        mempolicy.apply(plan.mempolicy)

    # F4: the user. cwd first as root: a directory only root may enter is still
    # entered (runc's rule); entered again as the user below, where the user must
    # be able to (CVE-2024-21626: getcwd() proves it is inside our root)
    cwd = proc.get("cwd") or "/"
    entered_as_root = try_chdir(cwd)
    user = proc.get("user") or {}
    caps = capabilities.parse(proc.get("capabilities"), f"{w}.capabilities")
    capabilities.drop_bounding(caps)  # needs CAP_SETPCAP: before the uid change
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)   # the permitted set survives setresuid
    if not plan.setgroups_denied:  # denied: a new or inherited (rootless) user namespace
        sc.setgroups(list(user.get("additionalGids") or []))
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    try:  # gid before uid: the new uid may not change it any more
        os.setresgid(gid, gid, gid)
    except OSError as e:
        raise ConfigError(f"{w}.user.gid", f"cannot become gid {gid}: {e.strerror}") from None
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise ConfigError(f"{w}.user.uid", f"cannot become uid {uid}: {e.strerror}") from None
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    os.umask(user["umask"] if "umask" in user else 0o022)
    enter_cwd(cwd, f"{w}.cwd", entered_as_root)

    # F5: inside the container's root: its /etc/passwd for HOME, its PATH for
    # args[0] (a missing binary is an error now, naming it, not at execve)
    env = environ(proc)
    argv0 = resolve_exe(proc["args"][0], env)

    # F6: no fd of the runtime or of its caller may reach the container (a host
    # directory fd is a way out: CVE-2016-9962, CVE-2024-21626); the LSM labels
    # take effect at execve, so they may be written any time before it
    close_on_exec_but(plan.preserve_fds)
    attrs.apply_lsm(proc, w)

    # F7: what must happen while every syscall is still allowed
    plan.before_filter(argv0)

    # F8: without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
    # before the capability sets drop it (the uid change emptied the effective
    # set: raise it again for the load). With no_new_privs anyone may load one,
    # so it goes last, filtering as few of the runtime's own syscalls as possible.
    nnp = bool(proc.get("noNewPrivileges"))
    if plan.seccomp is not None and not nnp:
        capabilities.raise_effective()
        plan.seccomp.load(plan.chan)
    capabilities.apply(caps)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if plan.seccomp is not None:
            plan.seccomp.load(plan.chan)

    # F9: init waits here for `start`
    plan.handoff(env)
    # F10
    try:
        os.execve(argv0, proc["args"], env)
    except OSError as e:
        plan.exec_failed(proc["args"][0], e)
    os._exit(127)  # an exec_failed that returned
