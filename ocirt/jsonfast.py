"""JSON through CPython's C accelerator alone.

`import json` pulls in `re` (and with it enum, functools, collections): several
milliseconds on a command that runs in about ten. The C scanner and encoder in
`_json` need none of that. Output matches json.dumps for the types ocirt writes.
"""
import _json

_WS = " \t\n\r"


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"),
                "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Ctx)


class JSONError(ValueError):
    def __init__(self, msg, doc, pos):
        line = doc.count("\n", 0, pos) + 1
        col = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg}: line {line} column {col} (char {pos})")
        self.pos = pos


def loads(s):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8-sig" if s[:3] == b"\xef\xbb\xbf" else "utf-8")
    n = len(s)
    i = 0
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except StopIteration as e:
        raise JSONError("Expecting value", s, e.value) from None
    except SystemError:
        # _json raises syntax errors as json.decoder.JSONDecodeError, which it only
        # finds once that module is imported (it fails with no exception set before):
        # import it on this error path only and scan again for the real message.
        import json.decoder
        try:
            obj, end = _scan(s, i)
        except StopIteration as e:
            raise JSONError("Expecting value", s, e.value) from None
        except json.decoder.JSONDecodeError as e:
            raise JSONError(e.msg, s, e.pos) from None
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise JSONError("Extra data", s, end)
    return obj


def members(s, i, names):
    """{name: value} of the named members of the JSON object that starts at s[i],
    scanned only until each has been seen (the rest is not parsed); None if s[i:]
    is not such an object."""
    n, want, out = len(s), set(names), {}
    try:
        i = _skip(s, i)
        if s[i] != "{":
            return None
        i += 1
        while want:
            i = _skip(s, i)
            if s[i] == "}":
                break
            key, i = _scan(s, i)
            i = _skip(s, i)
            if s[i] != ":":
                return None
            value, i = _scan(s, _skip(s, i + 1))
            if key in want:
                out[key] = value
                want.discard(key)
            i = _skip(s, i)
            if i < n and s[i] == ",":
                i += 1
    except (StopIteration, IndexError, SystemError, ValueError):
        return None
    return out


def _skip(s, i):
    while s[i] in _WS:
        i += 1
    return i


def _float(o):
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == -float("inf"):
        return "-Infinity"
    return float.__repr__(o)


_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)
_compact = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",",
                              False, False, True)
_str = _json.encode_basestring_ascii


def dumps(obj, indent=None, compact=False):
    """JSON text; `compact`: no spaces after separators (Go's encoding/json, which
    runc's list --format json and log lines are)."""
    if compact:
        return "".join(_compact(obj, 0))
    if indent is None:
        return "".join(_encode(obj, 0))
    out = []
    _pretty(obj, out, " " * indent if isinstance(indent, int) else indent, 0)
    return "".join(out)


def _pretty(o, out, ind, level):
    if isinstance(o, dict) and o:
        pad = "\n" + ind * (level + 1)
        out.append("{")
        first = True
        for k, v in o.items():
            out.append(pad if first else "," + pad)
            first = False
            out.append(_str(k if isinstance(k, str) else str(k)))
            out.append(": ")
            _pretty(v, out, ind, level + 1)
        out.append("\n" + ind * level + "}")
    elif isinstance(o, list) and o:
        pad = "\n" + ind * (level + 1)
        out.append("[")
        for i, v in enumerate(o):
            out.append(pad if i == 0 else "," + pad)
            _pretty(v, out, ind, level + 1)
        out.append("\n" + ind * level + "]")
    else:
        out.append("".join(_encode(o, 0)))
