"""Errors carried up to the CLI and printed once, as one line.

Each keeps what a caller may branch on: `errno` (the OS error behind it, or None) and
`field` (the config's JSON path, or None); `str()` is the line the CLI prints. Callers
test the type and these attributes, never the text."""


class OcirtError(Exception):
    """A failure the user can act on; str() is the one-line message."""

    def __init__(self, message="", *, errno=None, field=None):
        super().__init__(message)
        self.errno = errno
        self.field = field
        self.shown_by_init = False  # init printed it on the caller's own stdio already
        self.quiet = False  # so the CLI logs it without printing it again

    @classmethod
    def from_os(cls, what, e):
        """`what`: strerror, keeping e's errno."""
        return cls(f"{what}: {e.strerror or e}", errno=e.errno)


class ConfigError(OcirtError):
    """config.json (or another OCI document) is wrong at `path`.

    `path` is a JSON path in dotted form, e.g. ``linux.namespaces[2].type``;
    an empty path means the document as a whole.
    """

    def __init__(self, path, message, *, errno=None):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message, errno=errno,
                         field=path or None)


class ContainerNotFound(OcirtError):
    def __init__(self, cid):
        self.id = cid
        super().__init__(f"container {cid} does not exist", errno=2)  # ENOENT


class WrongState(OcirtError):
    """A verb refused in the container's status (ocirt/status.py has the table)."""

    def __init__(self, message, *, verb=None, status=None):
        super().__init__(message)
        self.verb = verb
        self.status = status


class Timeout(OcirtError):
    """A bounded wait ran out; `what` names what was awaited."""

    def __init__(self, message, *, what=None):
        super().__init__(message, errno=110)  # ETIMEDOUT
        self.what = what


class HelpRequested(Exception):
    """-h/--help among a verb's flags: main prints the verb's help (`flags` its parser)."""

    def __init__(self, flags):
        self.flags = flags
        super().__init__("help requested")
