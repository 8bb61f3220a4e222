import json
import sys

from ..features import features
from . import Flags


def main(opts, argv):
    Flags({}).parse(argv)
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
