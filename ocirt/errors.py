"""Errors carried up to the CLI and printed once, as one line."""


class OcirtError(Exception):
    """A failure the user can act on; str() is the one-line message."""


class ConfigError(OcirtError):
    """config.json (or another OCI document) is wrong at `path`.

    `path` is a JSON path in dotted form, e.g. ``linux.namespaces[2].type``;
    an empty path means the document as a whole.
    """

    def __init__(self, path, message):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ContainerNotFound(OcirtError):
    def __init__(self, cid):
        super().__init__(f"container {cid} does not exist")


class WrongState(OcirtError):
    pass


class HelpRequested(Exception):
    """-h/--help among a verb's flags: main prints the verb's help (`flags` its parser)."""

    def __init__(self, flags):
        self.flags = flags
        super().__init__("help requested")
