"""ocirt uninstall: remove the runtime `ocirt install` added to Docker's daemon.json."""
import sys

from .. import install as inst
from . import Flags
from .install import parse

FLAGS = Flags({
    "config": (("config-file", "c"), str, inst.DEFAULT_CONFIG),
    "runtime": (("name",), str, inst.DEFAULT_NAME),
    "help": (("h",), bool, False),
})

HELP = """usage: ocirt uninstall [--config FILE] [--runtime NAME]

Removes runtimes.NAME (default ocirt) from Docker's daemon.json (default
/etc/docker/daemon.json), and "default-runtime" when it names NAME; every other key
is kept. Containers still using the runtime keep running; reload dockerd afterwards.
"""


def main(opts, argv):
    o = parse(FLAGS, argv, "uninstall", HELP)
    if o is None:
        return 0
    what = inst.uninstall(o["config"], o["runtime"])
    name, cfg = o["runtime"], o["config"]
    if what == "absent":
        sys.stdout.write(f'runtime "{name}" is not in {cfg}; nothing changed\n')
    elif what == "default-removed":
        sys.stdout.write(f'removed "default-runtime": "{name}" from {cfg}\n')
    else:
        sys.stdout.write(f'removed runtime "{name}" from {cfg}; reload dockerd '
                         "(kill -HUP its pid, or systemctl reload docker)\n")
    return 0
