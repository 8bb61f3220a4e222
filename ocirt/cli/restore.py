from .checkpoint import restore


def main(opts, argv):
    return restore(opts, argv)
