"""The ocirt command: global flags, then one small module per verb (ocirt/cli/)."""
import os
import sys

from . import OCI_VERSION as SPEC_VERSION
from .cli import Flags
from .errors import HelpRequested, OcirtError
from .log import LOG
from .lazy import container, traceback

VERSION = "0.1.0"
COMMANDS = {
    "create": "create a container from a bundle",
    "start": "start a created container",
    "run": "create and start a container (foreground waits for it)",
    "state": "print a container's state as JSON",
    "kill": "send a signal to a container's init (or all its processes)",
    "delete": "delete a stopped container (--force kills it first)",
    "list": "list containers",
    "exec": "run a new process in a running container",
    "ps": "list a container's processes",
    "pause": "freeze a container's processes",
    "resume": "thaw a paused container",
    "update": "change a container's resource limits",
    "events": "print a container's resource usage",
    "checkpoint": "checkpoint a running container (not supported: no CRIU)",
    "restore": "restore a container from a checkpoint (not supported: no CRIU)",
    "spec": "write a default config.json",
    "features": "print the OCI features document",
    "install": "register ocirt as a runtime in Docker's daemon.json",
    "uninstall": "remove it from daemon.json again",
    "help": "show the commands, or one command's flags",
}
ARGS = {"create": "<container-id>", "run": "<container-id>", "start": "<container-id>",
        "state": "<container-id>", "kill": "<container-id> [signal]",
        "delete": "<container-id>", "exec": "<container-id> <command> [command options]",
        "ps": "<container-id> [ps options]", "pause": "<container-id>",
        "resume": "<container-id>", "update": "<container-id>", "events": "<container-id>",
        "checkpoint": "<container-id>", "restore": "<container-id>", "help": "[command]"}

USAGE = """NAME:
   ocirt - Open Container Initiative runtime in Python, with runc's command line

USAGE:
   ocirt [global options] command [command options] [arguments...]

COMMANDS:
""" + "".join(f"   {k:<11}{v}\n" for k, v in COMMANDS.items()) + """
GLOBAL OPTIONS:
   --root DIR         state directory (default $XDG_RUNTIME_DIR/ocirt for a non-root
                      user, /run/user/$UID/ocirt otherwise)
   --log FILE         append log lines to FILE (default: stderr)
   --log-format FMT   text or json
   --debug            debug logging; tracebacks on errors
   --systemd-cgroup   place cgroups through systemd (slice:prefix:name paths)
   --rootless MODE    auto, true or false
   --criu PATH        accepted for runc's sake (checkpoint/restore are not supported)
   --version, -v      print the version
   --help, -h         show this help
"""


def command_help(cmd, flags=None):
    """runc's (urfave/cli's) help page of one command."""
    out = [f"NAME:\n   ocirt {cmd} - {COMMANDS[cmd]}\n",
           f"USAGE:\n   ocirt {cmd} [command options] {ARGS.get(cmd, '')}".rstrip() + "\n"]
    if flags is not None and flags.spec:
        out.append("OPTIONS:")
        for name, (aliases, kind, _default) in flags.spec.items():
            names = ", ".join(("--" if len(n) > 1 else "-") + n for n in (name,) + aliases)
            out.append(f"   {names}{'' if kind is bool else ' value'}")
        out.append("   --help, -h  show help")
    return "\n".join(out) + "\n"


def _globals(argv):
    flags = Flags({
        "root": ((), str, None), "log": ((), str, None), "log-format": ((), str, "text"),
        "debug": ((), bool, False), "systemd-cgroup": ((), bool, False),
        "rootless": ((), str, "auto"), "criu": ((), str, None),
        "version": (("v",), bool, False), "help": (("h",), bool, False),
    })
    return flags.parse(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    front = from_front(os.environ)
    debug = "--debug" in argv
    cmd = None
    try:
        g, rest = _globals(argv)
        debug = g["debug"]
        LOG.path, LOG.fmt, LOG.debug_on = g["log"], g["log-format"], debug
        if g["log-format"] not in ("text", "json"):
            raise OcirtError(f"invalid --log-format {g['log-format']!r}: use text or json")
        if g["version"]:  # runc's three lines, which go-runc parses
            sys.stdout.write(f"ocirt version {VERSION}\ncommit: {_commit()}\n"
                             f"spec: {SPEC_VERSION}\n")
            return 0
        if not rest or g["help"]:
            sys.stdout.write(USAGE)
            return 0 if g["help"] or not rest else 1
        cmd, args = rest[0], rest[1:]
        if cmd not in COMMANDS:
            if "-h" in args or "--help" in args:
                raise OcirtError(f"No help topic for '{cmd}'")
            raise OcirtError(f"no such command {cmd!r} (see ocirt --help)")
        if cmd == "help":
            if args and args[0] not in COMMANDS:
                raise OcirtError(f"No help topic for '{args[0]}'")
            sys.stdout.write(_help_of(args[0]) if args else USAGE)
            return 0
        rootless = g["rootless"].strip().lower()
        if rootless not in ("auto", "true", "false"):
            raise OcirtError(f"invalid --rootless value {g['rootless']!r}: use auto, true "
                             "or false")
        opts = container.Options(root=os.path.abspath(g["root"]) if g["root"] else None,
                       systemd_cgroup=g["systemd-cgroup"], rootless=rootless,
                       log=g["log"], log_format=g["log-format"], debug=debug,
                       criu=g["criu"])
        mod = __import__(f"ocirt.cli.{cmd}", fromlist=["main"])
        if cmd == "start":
            return mod.main(opts, args, front["start_error"], front["start_stopped"]) or 0
        if cmd in ("create", "run", "exec"):
            return mod.main(opts, args, primer_fd=front["primer_fd"]) or 0
        return mod.main(opts, args) or 0
    except HelpRequested as h:
        sys.stdout.write(command_help(cmd, h.flags))
        return 0
    except OcirtError as e:
        if e.quiet:  # already on the caller's screen: the log only
            LOG.error(str(e))
            return 1
        return _fail(str(e), debug, cmd)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line unless --debug
        return _fail(f"{type(e).__name__}: {e}", debug, cmd)


def from_front(environ):
    """What the C front (ocirt/_shim/front/) did before it exec'd Python, taken out of
    `environ` (an exec boundary: the environment is the only way across; read here
    only, and removed so that no hook or container process inherits it):

    primer_fd      create, run, exec: the pipe its cgroup primer waits on
                   (OCIRT_PRIMER_FD; process/speed.py takes it), or None
    start_error    start: the error it saw releasing init (OCIRT_START_ERROR), or None
    start_stopped  start: init was stopped (SIGSTOP) when released (OCIRT_START_STOPPED)
    """
    fd = environ.pop("OCIRT_PRIMER_FD", None)
    try:
        fd = int(fd) if fd is not None else None
    except ValueError:
        fd = None
    return {"primer_fd": fd, "start_error": environ.pop("OCIRT_START_ERROR", None),
            "start_stopped": bool(environ.pop("OCIRT_START_STOPPED", None))}


def _commit():
    """The git commit of the source tree ocirt runs from, where there is one."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(os.path.join(here, ".git", "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            with open(os.path.join(here, ".git", head[5:])) as f:
                head = f.read().strip()
        return head[:40]
    except OSError:
        return "unknown"


def _help_of(cmd):
    """A command's help page, its flags taken from the command's own parser."""
    try:
        mod = __import__(f"ocirt.cli.{cmd}", fromlist=["main"])
        mod.main(container.Options(), ["--help"])
    except HelpRequested as h:
        return command_help(cmd, h.flags)
    except Exception:  # noqa: BLE001 - a verb that takes no flags
        pass
    return command_help(cmd)


def _fail(msg, debug, cmd=None):
    """One line, exit 1; `exec` exits 255 as runc's does (1 may be its process's)."""
    if debug:
        traceback.print_exc()
    LOG.error(msg)
    sys.stderr.write(f"ocirt: {msg}\n")
    sys.stderr.flush()
    return 255 if cmd == "exec" else 1


if __name__ == "__main__":
    sys.exit(main())
