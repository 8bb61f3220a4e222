"""ocirt install: register ocirt as a runtime in Docker's daemon.json."""
import os
import sys

from .. import install as inst
from ..errors import OcirtError
from . import Flags

FLAGS = Flags({
    "config": (("config-file", "c"), str, inst.DEFAULT_CONFIG),
    "runtime": (("name",), str, inst.DEFAULT_NAME),
    "path": ((), str, None),
    "runtime-arg": ((), list, []),
    "default": ((), bool, False),
    "help": (("h",), bool, False),
})

HELP = """usage: ocirt install [--config FILE] [--runtime NAME] [--path BINARY] [--default]
                     [--runtime-arg ARG]...

Adds {"runtimes": {NAME: {"path": BINARY}}} to Docker's daemon.json (default
/etc/docker/daemon.json, created if absent), keeping every other key; --default also
sets "default-runtime". NAME defaults to ocirt, BINARY to this ocirt command.
Running it again changes nothing. dockerd reads the change on SIGHUP or restart
(systemctl reload docker); then: docker run --runtime=NAME ...
"""


def parse(flags, argv, verb, help_text):
    """The flags of `verb` (install, uninstall: no arguments), or None once --help
    has printed `help_text`."""
    o, pos = flags.parse(argv, interspersed=True)
    if o["help"]:
        sys.stdout.write(help_text)
        return None
    if pos:
        raise OcirtError(f'"{verb}" takes no arguments, got {pos[0]!r}')
    return o


def main(opts, argv):
    o = parse(FLAGS, argv, "install", HELP)
    if o is None:
        return 0
    binary = os.path.abspath(o["path"]) if o["path"] else inst.self_path()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise OcirtError(f"--path {binary}: not an executable file")
    what = inst.install(o["config"], o["runtime"], binary, o["default"], o["runtime-arg"])
    name, cfg = o["runtime"], o["config"]
    if what == "unchanged":
        sys.stdout.write(f'runtime "{name}" ({binary}) is already in {cfg}; nothing changed\n')
    else:
        dflt = " as the default runtime" if o["default"] else ""
        sys.stdout.write(f'{what} runtime "{name}" ({binary}){dflt} in {cfg}; reload dockerd '
                         "(kill -HUP its pid, or systemctl reload docker) to use it\n")
    return 0
