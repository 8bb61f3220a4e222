"""The ocirt command: global flags, then one small module per verb (ocirt/cli/)."""
import os
import sys

from .errors import OcirtError

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"
COMMANDS = ("create", "start", "state", "kill", "delete", "run", "list", "spec", "features",
            "exec", "ps", "pause", "resume", "update", "events", "checkpoint", "restore",
            "install", "uninstall")

USAGE = """ocirt: an OCI container runtime (runc-compatible command line)

usage: ocirt [global options] command [command options] [arguments...]

commands:
  create    create a container from a bundle
  start     start a created container
  run       create and start a container (foreground waits for it)
  state     print a container's state as JSON
  kill      send a signal to a container's init (or all its processes)
  delete    delete a stopped container (--force kills it first)
  list      list containers
  exec      run a new process in a running container
  ps        list a container's processes
  pause     freeze a container's processes
  resume    thaw a paused container
  update    change a container's resource limits
  events    print a container's resource usage
  spec      write a default config.json
  features  print the OCI features document
  install   register ocirt as a runtime in Docker's daemon.json
  uninstall remove it from daemon.json again

global options:
  --root DIR         state directory (default $XDG_RUNTIME_DIR/ocirt for a non-root
                     user, /run/user/$UID/ocirt otherwise)
  --log FILE         append log lines to FILE
  --log-format FMT   text or json
  --debug            debug logging; tracebacks on errors
  --systemd-cgroup   place cgroups through systemd (slice:prefix:name paths)
  --rootless MODE    auto, true or false
  --version, -v      print the version
  --help, -h         show this help
"""


def _globals(argv):
    from .cli.args import Flags
    flags = Flags({
        "root": ((), str, None), "log": ((), str, None), "log-format": ((), str, "text"),
        "debug": ((), bool, False), "systemd-cgroup": ((), bool, False),
        "rootless": ((), str, "auto"), "criu": ((), str, None),
        "version": (("v",), bool, False), "help": (("h",), bool, False),
    })
    return flags.parse(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    from .log import LOG
    try:
        g, rest = _globals(argv)
        debug = g["debug"]
        LOG.path, LOG.fmt, LOG.debug_on = g["log"], g["log-format"], debug
        if g["log-format"] not in ("text", "json"):
            raise OcirtError(f"invalid --log-format {g['log-format']!r}: use text or json")
        if g["version"]:
            sys.stdout.write(f"ocirt version {VERSION}\nspec: {SPEC_VERSION}\n")
            return 0
        if not rest or g["help"]:
            sys.stdout.write(USAGE)
            return 0 if g["help"] or not rest else 1
        cmd, args = rest[0], rest[1:]
        if cmd not in COMMANDS:
            raise OcirtError(f"no such command {cmd!r} (see ocirt --help)")
        if g["systemd-cgroup"]:
            os.environ["OCIRT_SYSTEMD_CGROUP"] = "1"
        if g["rootless"] != "auto":
            from . import rootless
            rootless.set_mode(g["rootless"])
        if g["root"]:
            g["root"] = os.path.abspath(g["root"])
        mod = __import__(f"ocirt.cli.{cmd}", fromlist=["main"])
        return mod.main(g, args) or 0
    except OcirtError as e:
        return _fail(str(e), debug)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line unless --debug
        return _fail(f"{type(e).__name__}: {e}", debug)


def _fail(msg, debug):
    from .log import LOG
    if debug:
        import traceback
        traceback.print_exc()
    LOG.error(msg)
    sys.stderr.write(f"ocirt: {msg}\n")
    sys.stderr.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
