"""Which members of a document its schema does not name (config.json's fields from a
newer spec, or typos): config.load lists them in one warning. Only on a schema-cache
miss, so off the hot path."""
from . import jsonfast
from .schema import _Compiler, _matcher, schema_file


_docs = {}


def unknown_fields(instance, schema_name="config"):
    """JSON paths of the members of `instance` its schema does not name, in document
    order: fields of a newer spec than ocirt's, or typos. Where a schema lists an
    object's properties and says nothing of others, another key is unknown; objects
    the schema leaves open (maps, additionalProperties) have none."""
    doc = _docs.get(schema_name)
    if doc is None:
        with open(schema_file(schema_name), encoding="utf-8") as f:
            doc = _docs[schema_name] = jsonfast.loads(f.read())
    out = []
    _unknown(instance, [doc], _Compiler(doc).resolve, "", out)
    return out


def _in_place(schemas, resolve):
    """`schemas` with every $ref, anyOf and oneOf branch they apply in place."""
    todo, seen = list(schemas), []
    while todo:
        s = todo.pop()
        if not isinstance(s, dict) or any(s is x for x in seen):
            continue
        seen.append(s)
        if "$ref" in s:
            todo.append(resolve(s["$ref"]))
        todo.extend(s.get("anyOf", ()))
        todo.extend(s.get("oneOf", ()))
    return seen


def _unknown(inst, schemas, resolve, path, out):
    schemas = _in_place(schemas, resolve)
    if isinstance(inst, dict):
        listed = [s["properties"] for s in schemas if "properties" in s]
        pattern = [(_matcher(k), v) for s in schemas
                   for k, v in (s.get("patternProperties") or {}).items()]
        extra = [s["additionalProperties"] for s in schemas if "additionalProperties" in s]
        if not listed and not pattern and not extra:
            return  # a free-form object
        for k, v in inst.items():
            sub = path + (f".{k}" if k.isidentifier() else f"[{jsonfast.dumps(k)}]")
            if not path:
                sub = sub.lstrip(".")
            subs = [p[k] for p in listed if k in p]
            subs += [v2 for rx, v2 in pattern if rx(k) is not None]
            if not subs:
                subs = [e for e in extra if e is not False]
                if not subs:
                    out.append(sub)
                    continue
            _unknown(v, subs, resolve, sub, out)
    elif isinstance(inst, list):
        items = [s["items"] for s in schemas if "items" in s]
        if items:
            for i, v in enumerate(inst):
                _unknown(v, items, resolve, f"{path}[{i}]", out)
