"""Validate OCI documents (config.json, state, features) against spec/*.json.

A small JSON Schema (2020-12) interpreter for exactly this keyword subset:
type, properties, required, items, enum, const, pattern, minimum, maximum,
minLength, minItems, maxItems, uniqueItems, additionalProperties,
patternProperties, $ref (local "#/..." only), $defs, anyOf, oneOf,
description ($schema is ignored).  Boolean schemas are supported.  Any other
keyword in a schema file is a bug and raises ValueError when compiled.

It is on the hot path of every ``ocirt create``: it imports nothing but json,
os and re (json imports re already) and compiles each schema once, on first
use, into closures.

Semantics that differ from, or go beyond, plain JSON Schema:

* "integer" means a JSON number written without fraction or exponent
  (a Python int, never a bool).  ``1.0`` is not an integer here, as in the Go
  JSON decoding runc uses; the tests run the jsonschema cross-check with the
  same integer rule.
* The first violation is raised as ``ConfigError(path, message)``.  "First"
  is document order: an object's own failures (type, enum, required, ...)
  come before anything inside it, and its members are visited in the order
  they appear in the document.  A missing required property is reported at
  its own path (``root.path: is required``).
* When every branch of anyOf/oneOf fails, the error of the branch that got
  deepest into the instance is reported (the earlier branch on a tie); if all
  branches fail on the value itself with "must be ..." messages, those are
  merged ("must be a string or an object").
* Messages: a subschema whose ``description`` starts with "must " replaces
  the message of any error it produces by that description (the path is
  kept), e.g. "process.cwd: must be an absolute path".

Paths are dotted: ``linux.namespaces[2].type``; keys that are not plain
identifiers are bracketed and quoted: ``linux.sysctl["net.ipv4.ip_forward"]``.
"""

import os

from ocirt import jsonfast

from ocirt.errors import ConfigError
from ocirt.lazy import json, re

SCHEMA_NAMES = ("config", "state", "features")

_KEYWORDS = frozenset((
    "type", "properties", "required", "items", "enum", "const", "pattern",
    "minimum", "maximum", "minLength", "minItems", "maxItems", "uniqueItems",
    "additionalProperties", "patternProperties", "$ref", "$defs", "anyOf",
    "oneOf", "description", "$schema",
))

_ARTICLE = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}

def schema_dirs():
    """Where the schema files are looked for, in order."""
    here = os.path.dirname(os.path.abspath(__file__))
    return (os.path.join(here, "..", "spec"), os.path.join(here, "spec"))


def schema_file(name):
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMA_NAMES)}")
    fname = name + "-schema.json"
    for d in schema_dirs():
        p = os.path.join(d, fname)
        if os.path.isfile(p):
            return os.path.normpath(p)
    raise FileNotFoundError(f"{fname} not found in " + " or ".join(os.path.normpath(d) for d in schema_dirs()))


_checkers = {}


def _checker(name):
    c = _checkers.get(name)
    if c is None:
        with open(schema_file(name), encoding="utf-8") as f:
            doc = jsonfast.loads(f.read())
        c = _checkers[name] = _Compiler(doc).compile(doc)
    return c


def validate(instance, schema_name="config"):
    """Raise ConfigError for the first violation of spec/<schema_name>-schema.json.

    `instance` is the decoded JSON document (dicts, lists, str, int, float,
    bool, None).  Returns None when the document is valid.
    """
    err = _checker(schema_name)(instance, None)
    if err is not None:
        raise ConfigError(_path(err[0]), err[1])



# --- locations and errors ---------------------------------------------------
#
# A location is None (document root) or a tuple (parent, key, order): key is
# the member name or array index, order its position among its siblings in the
# document (-1 for a missing required member, which sorts before every present
# member).  An error is a tuple (location, message).  Both are only turned
# into strings or sort keys when an error actually happened.

def _pos(loc):
    out = []
    while loc is not None:
        loc, _, order = loc
        out.append(order)
    out.reverse()
    return out


def _path(loc):
    keys = []
    while loc is not None:
        loc, key, _ = loc
        keys.append(key)
    out = []
    for key in reversed(keys):
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif key.isascii() and key.isidentifier():
            out.append("." + key if out else key)
        else:
            out.append("[" + json.dumps(key, ensure_ascii=False) + "]")
    return "".join(out)


def _first(errors):
    """The error that comes first in document order (earliest in list on a tie)."""
    best = None
    best_pos = None
    for e in errors:
        if e is None:
            continue
        if best is None:
            best = e
            continue
        if best_pos is None:
            best_pos = _pos(best[0])
        p = _pos(e[0])
        if p < best_pos:
            best, best_pos = e, p
    return best


def _deepest(errors, loc):
    """anyOf/oneOf: the error of the branch that got deepest."""
    if all(e[0] is loc for e in errors):
        msgs = []
        for e in errors:
            if e[1] not in msgs:
                msgs.append(e[1])
        if len(msgs) > 1 and all(m.startswith("must be ") for m in msgs):
            return (loc, "must be " + " or ".join(m[8:] for m in msgs))
        return errors[0]
    best = errors[0]
    depth = len(_pos(best[0]))
    for e in errors[1:]:
        d = len(_pos(e[0]))
        if d > depth:
            best, depth = e, d
    return best


# --- JSON value helpers -----------------------------------------------------

def _is_integer(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPE_TEST = {
    "string": lambda x: isinstance(x, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "null": lambda x: x is None,
}


def _key(x):
    """A hashable form of a JSON value with JSON equality (1 == 1.0, True != 1)."""
    if isinstance(x, str):
        return ("s", x)
    if isinstance(x, bool):
        return ("b", x)
    if isinstance(x, (int, float)):
        return ("n", x)
    if x is None:
        return ("z",)
    if isinstance(x, (list, tuple)):
        return ("a", tuple(_key(v) for v in x))
    if isinstance(x, dict):
        return ("o", frozenset((k, _key(v)) for k, v in x.items()))
    return ("?", id(x))


def _show(v):
    return v if isinstance(v, str) else jsonfast.dumps(v)


def _ok(inst, loc):
    return None


def _false(inst, loc):
    return (loc, "is not allowed")


# --- compiler ---------------------------------------------------------------

class _Compiler:
    def __init__(self, root):
        self.root = root
        self.cache = {}

    def resolve(self, ref):
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ValueError(f"unresolvable $ref {ref!r}")
        return node

    def compile(self, schema):
        if schema is True:
            return _ok
        if schema is False:
            return _false
        if not isinstance(schema, dict):
            raise ValueError(f"schema must be an object or a boolean, not {schema!r}")
        c = self.cache.get(id(schema))
        if c is None:
            c = self.cache[id(schema)] = self._build(schema)
        return c

    def _lazy(self, schema):
        """Compile `schema` on first use (keeps first-call cost proportional to the document)."""
        if schema is True or schema is False:
            return self.compile(schema)
        box = []

        def check(inst, loc):
            if not box:
                box.append(self.compile(schema))
            return box[0](inst, loc)
        return check

    def _build(self, s):
        bad = set(s) - _KEYWORDS
        if bad:
            raise ValueError(f"unsupported schema keyword(s): {', '.join(sorted(bad))}")

        # Checks on the value itself; each is (applies-to-value, test, message).
        own = []

        t = s.get("type")
        type_test = None
        type_msg = None
        if t is not None:
            names = [t] if isinstance(t, str) else list(t)
            tests = [_TYPE_TEST[n] for n in names]
            type_test = tests[0] if len(tests) == 1 else (lambda x: any(f(x) for f in tests))
            type_msg = "must be " + " or ".join(_ARTICLE[n] for n in names)
        noun = ""
        if t == "integer":
            noun = "an integer "
        elif t == "number":
            noun = "a number "

        if "enum" in s:
            vals = s["enum"]
            msg = ("must be " if len(vals) == 1 else "must be one of ") + ", ".join(_show(v) for v in vals)
            if all(isinstance(v, str) for v in vals):
                strs = frozenset(vals)
                own.append(lambda x: isinstance(x, str) and x in strs or msg)
            else:
                keys = frozenset(_key(v) for v in vals)
                own.append(lambda x: _key(x) in keys or msg)
        if "const" in s:
            cval = s["const"]
            ckey = _key(cval)
            cmsg = "must be " + _show(cval)
            own.append(lambda x: _key(x) == ckey or cmsg)
        if "minLength" in s:
            n = s["minLength"]
            lmsg = "must not be empty" if n == 1 else f"must be at least {n} characters long"
            own.append(lambda x: not isinstance(x, str) or len(x) >= n or lmsg)
        if "pattern" in s:
            rx = _matcher(s["pattern"])
            pmsg = "must match pattern " + s["pattern"]
            own.append(lambda x: not isinstance(x, str) or rx(x) is not None or pmsg)
        if "minimum" in s:
            lo = s["minimum"]
            lomsg = f"must be {noun}>= {lo}"
            own.append(lambda x: not _is_number(x) or x >= lo or lomsg)
        if "maximum" in s:
            hi = s["maximum"]
            himsg = f"must be {noun}<= {hi}"
            own.append(lambda x: not _is_number(x) or x <= hi or himsg)
        if "minItems" in s:
            mi = s["minItems"]
            mimsg = "must not be empty" if mi == 1 else f"must have at least {mi} items"
            own.append(lambda x: not isinstance(x, list) or len(x) >= mi or mimsg)
        if "maxItems" in s:
            ma = s["maxItems"]
            mamsg = "must be empty" if ma == 0 else f"must have at most {ma} item" + ("" if ma == 1 else "s")
            own.append(lambda x: not isinstance(x, list) or len(x) <= ma or mamsg)
        own = tuple(own)

        required = tuple(s.get("required", ()))
        props = {k: self._lazy(v) for k, v in s["properties"].items()} if "properties" in s else None
        pprops = tuple((_matcher(k), self._lazy(v)) for k, v in s["patternProperties"].items()) \
            if "patternProperties" in s else ()
        addl = self._lazy(s["additionalProperties"]) if "additionalProperties" in s else None
        walk_object = props is not None or bool(pprops) or addl is not None
        items = self._lazy(s["items"]) if "items" in s else None
        unique = s.get("uniqueItems") is True
        walk_array = items is not None or unique

        ref = self._lazy(self.resolve(s["$ref"])) if "$ref" in s else None
        any_of = tuple(self._lazy(b) for b in s["anyOf"]) if "anyOf" in s else None
        one_of = tuple(self._lazy(b) for b in s["oneOf"]) if "oneOf" in s else None
        in_place = ref is not None or any_of is not None or one_of is not None

        def check(inst, loc):
            if type_test is not None and not type_test(inst):
                return (loc, type_msg)
            for test in own:
                r = test(inst)
                if r is not True:
                    return (loc, r)
            err = None
            if isinstance(inst, dict):
                for name in required:
                    if name not in inst:
                        return ((loc, name, -1), "is required")
                if walk_object:
                    i = 0
                    for k, v in inst.items():
                        child = (loc, k, i)
                        i += 1
                        matched = False
                        e = None
                        if props is not None:
                            c = props.get(k)
                            if c is not None:
                                matched = True
                                e = c(v, child)
                        for rx, c in pprops:
                            if rx(k) is not None:
                                matched = True
                                e2 = c(v, child)
                                if e2 is not None:
                                    e = e2 if e is None else _first((e, e2))
                        if not matched and addl is not None:
                            e = addl(v, child)
                        if e is not None:
                            err = e
                            break
            elif walk_array and isinstance(inst, list):
                seen = {} if unique else None
                for i, v in enumerate(inst):
                    child = (loc, i, i)
                    if seen is not None:
                        kv = _key(v)
                        j = seen.get(kv)
                        if j is not None:
                            err = (child, f"must not repeat item {j}")
                            break
                        seen[kv] = i
                    if items is not None:
                        e = items(v, child)
                        if e is not None:
                            err = e
                            break
            if not in_place:
                return err
            errs = [err]
            if ref is not None:
                errs.append(ref(inst, loc))
            if any_of is not None:
                branch_errs = []
                for b in any_of:
                    e = b(inst, loc)
                    if e is None:
                        break
                    branch_errs.append(e)
                else:
                    errs.append(_deepest(branch_errs, loc))
            if one_of is not None:
                branch_errs = []
                passed = []
                for n, b in enumerate(one_of):
                    e = b(inst, loc)
                    if e is None:
                        passed.append(n)
                    else:
                        branch_errs.append(e)
                if not passed:
                    errs.append(_deepest(branch_errs, loc))
                elif len(passed) > 1:
                    errs.append((loc, f"must match exactly one alternative, but matches {passed[0]} and {passed[1]}"))
            return _first(errs)

        desc = s.get("description")
        if isinstance(desc, str) and desc.startswith("must "):
            inner = check

            def check(inst, loc):
                e = inner(inst, loc)
                return e if e is None else (e[0], desc)
        return check


# --- patterns without `re` --------------------------------------------------
# Importing re costs milliseconds on every `ocirt create`; the patterns the OCI
# schemas use are simple enough to check by hand. Any other pattern falls back to re.

_DIGITS = frozenset("0123456789")
_ALNUM_DASH = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _numeric_id(p):
    return p != "" and set(p) <= _DIGITS and (p == "0" or p[0] != "0")


def _semver(x):
    core, plus, build = x.partition("+")
    if plus and not all(b and set(b) <= _ALNUM_DASH for b in build.split(".")):
        return None
    core, dash, pre = core.partition("-")
    if dash and not all(p and set(p) <= _ALNUM_DASH and (not set(p) <= _DIGITS or _numeric_id(p))
                        for p in pre.split(".")):
        return None
    parts = core.split(".")
    return True if len(parts) == 3 and all(_numeric_id(p) for p in parts) else None


def _cpu_list(x):
    if x == "":
        return True
    for item in x.split(","):
        lo, dash, hi = item.partition("-")
        if not lo or not set(lo) <= _DIGITS or (dash and (not hi or not set(hi) <= _DIGITS)):
            return None
    return True


_KNOWN = {
    "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-]"
    "[0-9A-Za-z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\\+[0-9A-Za-z-]+"
    "(\\.[0-9A-Za-z-]+)*)?(?![\\s\\S])": _semver,
    "^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?(?![\\s\\S])": _cpu_list,
    "^/": lambda x: True if x.startswith("/") else None,
    "^MB:[^\\n]*(?![\\s\\S])": lambda x: True if x.startswith("MB:") and "\n" not in x else None,
    "^[0-9]+[KMGTPE]B(?![\\s\\S])": lambda x: (True if len(x) >= 3 and x[-1] == "B" and x[-2] in "KMGTPE"
                                             and set(x[:-2]) <= _DIGITS else None),
    "^[rwm]*(?![\\s\\S])": lambda x: True if set(x) <= set("rwm") else None,
    "^(?![\\s\\S])": lambda x: True if x == "" else None,
}


def _matcher(pattern):
    fn = _KNOWN.get(pattern)
    if fn is not None:
        return fn
    return re.compile(pattern).search
