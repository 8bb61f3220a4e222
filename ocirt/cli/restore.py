from .checkpoint import restore


def main(g, argv):
    return restore(g, argv)
