"""A container's status and what each verb may do in it: the one place both rules live.

Status is derived, never stored: the questions are asked in `ORDER` (the C front,
ocirt/_shim/front/record.c, asks the same ones in the same order from the same
state file: tests/unit/test_rules.py feeds both the same fixtures).

Plain string constants rather than `enum.Enum`: importing enum costs ~4 ms of every
command's start on a quiet machine (15 ms loaded, `python -X importtime`), more than
any verb's own work; the values are the OCI status strings themselves.

The first question (is the recorded pid still that process?) is answered by
proc_start_time/process_alive, pure /proc readers: also what cgroups/systemd.py uses
for its keeper, without depending on the record (state.py re-exports them).
"""
import os

from .errors import WrongState

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
ALL = (CREATING, CREATED, RUNNING, PAUSED, STOPPED)

# The order of the questions that derive a status (runtime.md's lifecycle, runc's rules):
ORDER = (
    (STOPPED, "init's recorded pid is not alive, or alive with another start time"),
    (PAUSED, "the cgroup's freezer says frozen (a created container too, as runc)"),
    (CREATED, "exec.sock is still there: init waits for start"),
    (RUNNING, "otherwise"),
)

# verb -> the statuses it is allowed from (runc's behaviour; see docs/compat.md)
START, KILL, PAUSE, RESUME, EXEC, UPDATE, PS, DELETE, CHECKPOINT = (
    "start", "kill", "pause", "resume", "exec", "update", "ps", "delete", "checkpoint")
ALLOWED = {
    START: (CREATED,),
    KILL: (CREATED, RUNNING, PAUSED),
    PAUSE: (CREATED, RUNNING),
    RESUME: (PAUSED,),
    EXEC: (CREATED, RUNNING),  # paused only with --ignore-paused (lifecycle/exec.py waits)
    UPDATE: (CREATED, RUNNING, PAUSED),
    PS: (CREATED, RUNNING, PAUSED, STOPPED),  # a stopped one lists nothing (runc)
    DELETE: (STOPPED, CREATED),  # created: init is killed first, as runc (containerd needs it)
    CHECKPOINT: (RUNNING, PAUSED),
}
FORCE_ANY = (DELETE,)  # verbs whose --force allows every status


def _message(verb, cid, status):
    """runc's wording for each refusal."""
    if verb == START:
        return f"cannot start container {cid}: it is {status}, not created"
    if verb == PAUSE:
        return f"container {cid}: container not running ({status})"
    if verb == RESUME:
        return f"container {cid}: container not paused ({status})"
    if verb == EXEC:
        if status == PAUSED:
            return (f"cannot exec in a paused container {cid} (resume it first, or use "
                    "--ignore-paused to wait for that)")
        return f"cannot exec in a {status} container {cid}: container not running"
    if verb == DELETE:
        return f"cannot delete container {cid} that is not stopped: {status}"
    if verb == KILL:
        return f"container {cid}: container not running"
    return f"container {cid}: container not running ({status})"  # update, checkpoint


def allowed(verb, status, force=False):
    return status in ALLOWED[verb] or (force and verb in FORCE_ANY)


def require(verb, cid, status, force=False):
    """Raise WrongState (with runc's words) unless `verb` may act in `status`."""
    if not allowed(verb, status, force):
        raise WrongState(_message(verb, cid, status), verb=verb, status=status)
    return status


# --- a process's identity: its pid and its start time (field 22 of /proc/PID/stat),
# which tells a recycled pid apart

def proc_start_time(pid):
    """The start time of `pid` (field 22 of /proc/pid/stat) and its state letter;
    (None, None) when there is no such process."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None, None
    try:
        chunks = []
        while True:
            b = os.read(fd, 4096)
            if not b:
                break
            chunks.append(b)
    except ProcessLookupError:  # it exited between the open and the read
        return None, None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def process_alive(pid, start_time):
    """`pid` runs (not a zombie) and, when `start_time` is given, started then."""
    t, letter = proc_start_time(pid)
    if t is None or letter in ("Z", "X"):
        return False
    return start_time is None or t == start_time
