"""--log / --log-format: runc's log lines, text or json, appended to a file; without
--log, warnings and debug lines go to stderr (as runc's do). Errors are printed once
by main (`ocirt: msg`), so they go to the file only."""
import os
import time
from .lazy import jsonfast


def _now():
    t = time.time()
    secs = int(t)
    tm = time.gmtime(secs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{int((t - secs) * 1e9):09d}Z"


class Log:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.fmt = fmt
        self.debug_on = debug

    def _emit(self, level, msg):
        if not self.path and level == "error":
            return
        if self.fmt == "json":
            line = jsonfast.dumps({"level": level, "msg": msg, "time": _now()}, compact=True)
        else:
            line = f'time="{_now()}" level={level} msg="{msg}"'
        try:
            if not self.path:
                os.write(2, (line + "\n").encode())
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def error(self, msg):
        self._emit("error", msg)

    def warning(self, msg):
        self._emit("warning", msg)

    def info(self, msg):
        self._emit("info", msg)

    def debug(self, msg):
        if self.debug_on:
            self._emit("debug", msg)


LOG = Log()
