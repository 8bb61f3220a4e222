"""start: release the init parked by `create`; it execs the container's process."""
import _socket  # the C module: `socket` imports selectors and enum
import os
import time
import select

from .. import rules, state as statemod, status as S
from ..errors import OcirtError, WrongState
from ..lazy import hooks, lifecycle_delete


def start(c, start_error=None, start_stopped=False):
    """Release `c`'s init (locked, loaded). `start_error`/`start_stopped`: what the C
    front saw when it released the init itself and handed over to Python."""
    if start_error is not None:  # init reported this instead of exec'ing
        _start_failed(c, start_error.encode())
    if start_stopped:
        raise _stopped_error(c)
    c.require(S.START)
    pid = c.state.pid
    if _stopped(pid):
        raise WrongState(f"cannot start container {c.id}: its init (pid {pid}) is stopped;"
                         f" continue it first (kill -CONT {pid})", verb=S.START,
                         status=S.CREATED)
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    dirfd = os.open(c.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{dirfd}/exec.sock")
        os.unlink("exec.sock", dir_fd=dirfd)
    finally:
        os.close(dirfd)
    # init closes this connection by exec'ing (close-on-exec) or writes an error
    err = _wait_reply(s, c)
    s.close()
    if err:
        _start_failed(c, err)
    poststart = c.state.hooks_poststart
    if poststart:
        # runtime.md step 9: a failed poststart hook is an error; the container is
        # stopped and destroyed (step 12)
        try:
            hooks.Hooks({"poststart": poststart}).run("poststart", c.oci_state())
        except OcirtError as e:
            _start_failed(c, str(e).encode())


# s an init may stay stopped after its release before start gives up (the front's too)
STOPPED_GRACE = rules.START_STOPPED_GRACE


def _stopped(pid):
    return statemod.proc_start_time(pid)[1] in ("T", "t")


def _wait_reply(s, c):
    """init's answer: b"" once it has exec'd, else its error. Bounded: an init stopped
    (SIGSTOP, a debugger) after its release is not waited for; it will exec when
    continued."""
    pid = c.state.pid
    since = None
    while True:
        if select.select([s], [], [], rules.START_POLL)[0]:
            try:
                return s.recv(4096)
            except ConnectionResetError:
                return b"init exited before it could exec the process"
        if not _stopped(pid):
            since = None
        elif since is None:
            since = time.monotonic()
        elif time.monotonic() - since > STOPPED_GRACE:
            raise _stopped_error(c)


def _stopped_error(c):
    pid = c.state.pid
    return OcirtError(f"container {c.id}: its init (pid {pid}) was stopped before it could "
                      f"exec the process; it will when continued (kill -CONT {pid})")


def _start_failed(c, err):
    """init could not exec (a startContainer hook failed, ...): it exits; the
    container is destroyed as the lifecycle says (runtime.md, step 12)."""
    try:
        lifecycle_delete._kill_and_wait(c.state, S.CREATED)
        lifecycle_delete.destroy(c)
    except OcirtError:
        pass
    printed = err.startswith(b"\x01")  # init put it on the container's stderr already
    text = err.lstrip(b"\x01").decode(errors="replace")
    e = OcirtError(f"container {c.id}: {text}")
    e.shown_by_init = printed
    raise e
