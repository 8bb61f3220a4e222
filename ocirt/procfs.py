"""Writing the kernel's control files (/proc, id maps), with errors naming the field."""
import os

from .errors import ConfigError


def write(path, value, where):
    """Write `value` to `path` in one write(2); a failure is a ConfigError at `where`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise ConfigError(where, f"cannot write {value.strip()!r} to {path}: {e.strerror}") from None
