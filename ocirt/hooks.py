"""OCI hooks: run with the container state on stdin, args, env and a timeout."""
import json
import os
import subprocess

from .errors import OcirtError


def run_hook(hook, phase, index, state):
    args = hook.get("args") or [hook["path"]]
    env = hook.get("env")
    env_map = None
    if env is not None:
        env_map = {}
        for item in env:
            k, sep, v = item.partition("=")
            if sep:
                env_map[k] = v
    timeout = hook.get("timeout")
    where = f"hooks.{phase}[{index}]"
    try:
        p = subprocess.run([hook["path"]] + list(args[1:]), executable=hook["path"],
                           input=json.dumps(state).encode(), env=env_map,
                           capture_output=True, timeout=timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise OcirtError(f"{where}: {hook['path']} did not finish in {timeout}s and was killed") from None
    except OSError as e:
        raise OcirtError(f"{where}: cannot run {hook['path']}: {e.strerror}") from None
    if p.returncode != 0:
        detail = (p.stderr or p.stdout).decode(errors="replace").strip().splitlines()
        raise OcirtError(f"{where}: {hook['path']} exited with status {p.returncode}"
                         + (f": {detail[-1]}" if detail else ""))


class Hooks:
    def __init__(self, hooks):
        self.hooks = hooks or {}

    def run(self, phase, state):
        for i, h in enumerate(self.hooks.get(phase) or []):
            run_hook(h, phase, i, state)


def run_list_warn(hooks, phase, state):
    """poststart/poststop: a failure is a warning and the operation goes on."""
    from .log import LOG
    for i, h in enumerate(hooks):
        try:
            run_hook(h, phase, i, state)
        except OcirtError as e:
            LOG.warning(str(e))
            os.write(2, f"ocirt: warning: {e}\n".encode())
