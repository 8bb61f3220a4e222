"""OCI hooks (config.md "POSIX-platform Hooks"): each hook runs `path` with `args`
as its argv (argv[0] included; [path] when absent), `env` as its environment (the
runtime's when absent), the container state JSON on stdin, and is killed, with
every process it started, after `timeout` seconds (a failure).

Where and when (runtime.md, "Lifecycle"):
  prestart, createRuntime   create, runtime namespace, by the create process, once
                            the container's namespaces and mounts exist (before
                            pivot_root); a failure stops create and undoes it
  createContainer           create, container namespaces, by init before pivot_root
  startContainer            start, container namespaces, by init just before execve;
                            a failure stops the container and `start` destroys it
  poststart                 start, runtime namespace, after the process runs;
                            a failure is a warning
  poststop                  delete, runtime namespace, after the container is gone;
                            a failure is a warning

init runs hooks after pivot_root (startContainer): this module and subprocess are
imported by create before the fork.
"""
import json
import os
import _signal as signal
import subprocess

from .errors import OcirtError
from .log import LOG

PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop")


def _env(hook, default=None):
    env = hook.get("env")
    if env is None:
        return default
    out = {}
    for item in env:
        k, sep, v = item.partition("=")
        if sep:
            out[k] = v
    return out


def run_hook(hook, phase, index, state, default_env=None, cwd=None):
    """Run one hook; OcirtError naming it (hooks.<phase>[i], then runc's words) if it
    fails. `default_env`: the environment of a hook without `env` (None: ours)."""
    where = f"hooks.{phase}[{index}]: error running {phase} hook #{index}"
    path = hook["path"]
    argv = list(hook.get("args") or [path])
    timeout = hook.get("timeout")
    try:
        # its own session: on a timeout the whole group it started is killed
        p = subprocess.Popen(argv, executable=path, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_env(hook, default_env), close_fds=True,
                             start_new_session=True, cwd=cwd)
    except OSError as e:
        raise OcirtError(f"{where}: cannot run {path}: {e.strerror}") from None
    try:
        out, err = p.communicate(json.dumps(state).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p)
        raise OcirtError(f"{where}: {path} did not finish in {timeout}s and was killed") from None
    except BaseException:
        _kill_group(p)
        raise
    if p.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        if p.returncode < 0:  # Go's wording follows: "signal: bad system call"
            name = (signal.strsignal(-p.returncode) or "").lower()
            how = f"was killed by signal {-p.returncode}" + (f" (signal: {name})" if name else "")
        else:
            how = f"exited with status {p.returncode}"
        raise OcirtError(f"{where}: {path} {how}" + (f": {detail[-1]}" if detail else ""))


def _kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.kill()
    except ProcessLookupError:
        pass
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


class Hooks:
    def __init__(self, hooks):
        self.hooks = hooks or {}

    def run(self, phase, state, default_env=None, cwd=None):
        for i, h in enumerate(self.hooks.get(phase) or []):
            run_hook(h, phase, i, state, default_env, cwd)


def run_list_warn(hooks, phase, state):
    """poststart/poststop: a failure is a warning and the operation goes on."""
    for i, h in enumerate(hooks):
        try:
            run_hook(h, phase, i, state)
        except OcirtError as e:
            LOG.warning(str(e))
            os.write(2, f"ocirt: warning: {e}\n".encode())
