"""The CLI's verbs, one module each (ocirt/cli/<verb>.py), and their flag parser.

A small flag parser with urfave/cli's habits (runc's CLI): flags before
positional arguments, `-flag`, `--flag`, `--flag=value`, short aliases, `--`."""
from ..errors import HelpRequested, OcirtError

_List = list  # the builtin: once ocirt.cli.list is imported, `list` here names it


class Flags:
    def __init__(self, spec):
        """spec: {name: (aliases, kind, default)}; kind is bool, str, int or list."""
        self.spec = spec
        self.lookup = {}
        for name, (aliases, _kind, _default) in spec.items():
            for a in (name,) + tuple(aliases):
                self.lookup[a] = name

    def parse(self, argv, interspersed=False):
        vals = {name: (_List(d) if isinstance(d, _List) else d)
                for name, (_a, _k, d) in self.spec.items()}
        pos = []
        i = 0
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--":
                pos.extend(argv[i:])
                break
            if a.startswith("-") and a != "-" and not (pos and not interspersed):
                body = a.lstrip("-")
                key, eq, value = body.partition("=")
                name = self.lookup.get(key)
                if name is None and key in ("h", "help"):
                    raise HelpRequested(self)
                if name is None:
                    raise OcirtError(f"flag provided but not defined: -{key}")
                kind = self.spec[name][1]
                if kind is bool:
                    if eq:
                        if value.lower() not in ("true", "false", "1", "0"):
                            raise OcirtError(f"invalid boolean value {value!r} for -{key}")
                        vals[name] = value.lower() in ("true", "1")
                    else:
                        vals[name] = True
                    continue
                if not eq:
                    if i >= len(argv):
                        raise OcirtError(f"flag needs an argument: -{key}")
                    value = argv[i]
                    i += 1
                if kind is int:
                    try:
                        value = int(value)
                    except ValueError:
                        raise OcirtError(f"invalid value {value!r} for flag -{key}") from None
                if kind is _List:
                    vals[name].append(value)
                else:
                    vals[name] = value
            else:
                pos.append(a)
        return vals, pos


def need_id(pos, cmd, extra_ok=False):
    if not pos:
        raise OcirtError(f'"{cmd}" requires a container id')
    if len(pos) > 1 and not extra_ok:
        raise OcirtError(f'"{cmd}" takes one container id, got {len(pos)} arguments')
    return pos[0]
