"""run: create + start, and in the foreground wait for the process and return
its exit status (128+N when killed by signal N), deleting the container after."""
import os
import _signal as signal
import _socket as socket  # the C module: `socket` imports selectors and enum
from time import monotonic

from .. import syscalls as sc
from ..errors import OcirtError
from ..container import Container
from ..container import options_of
from .create import create
from ..process.common import reap_status as _reap, wait_status as _wait_for
from .start import start
from ..lazy import terminal, usage

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
              signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def run(cid, bundle=".", root=None, detach=False, keep=False, pid_file=None,
        console_socket=None, no_pivot=False, no_new_keyring=False, preserve_fds=0,
        on_exit=None, pidfd_socket=None, opts=None, usage_file=None):
    opts = options_of(opts or root)
    if not detach:
        # init's parent (the intermediate) exits; as subreaper we inherit init and wait for it.
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    mine = receiver = master = None
    if not detach and not console_socket:
        # process.terminal without a console socket: the pty master comes to us and
        # we relay the caller's terminal (as runc does)
        mine, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = create(cid, bundle, opts=opts, pid_file=pid_file, console_socket=console_socket,
                     no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                     preserve_fds=preserve_fds, console_receiver=receiver, park=False,
                     pidfd_socket=pidfd_socket)
        if mine is not None:  # the master, if init sent one (no terminal: nothing)
            try:
                _m, anc, _f, _a = mine.recvmsg(64, socket.CMSG_SPACE(4), socket.MSG_DONTWAIT
                                               | socket.MSG_CMSG_CLOEXEC)
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        master = int.from_bytes(data[:4], "little")
            except BlockingIOError:
                pass
            if master is not None:  # the caller's size, before the process runs
                terminal.copy_size(0, master)
    finally:
        for s in (mine, receiver):
            if s is not None:
                s.close()
    t0 = monotonic()
    try:
        with Container.load(opts, cid, lock=True) as c:
            start(c)
    except BaseException as e:
        if master is not None:
            _drain(master)  # what init said on its terminal (its exec error) comes first
            os.close(master)
        Container.handle(opts, cid).delete(force=True)
        if not detach and isinstance(e, OcirtError) and e.shown_by_init:
            # the caller saw init's own line (its stdio is ours): said once, as runc
            e.quiet = True
        raise
    if detach:
        return 0
    old = {}
    for s in _FORWARDED:
        old[s] = signal.signal(s, lambda num, _f: _forward(pid, num))
    try:
        if master is not None:
            try:
                status = terminal.relay(master, lambda: _reap(pid))
            finally:
                os.close(master)
        else:
            status = _wait_for(pid)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if usage_file:  # start to exit, in s
        usage.write_report(usage_file, cid, opts, status, monotonic() - t0)
    if on_exit is not None:
        on_exit(status)
    if not keep:
        Container.handle(opts, cid).delete(force=True)
    return status


def _forward(pid, num):
    try:
        os.kill(pid, num)
    except ProcessLookupError:
        pass


def _drain(master):
    os.set_blocking(master, False)
    try:
        while True:
            data = os.read(master, 65536)
            if not data:
                break
            os.write(1, data)
    except OSError:
        pass
