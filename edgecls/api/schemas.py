"""JSON Schemas of the files edgecls writes, generated from the code that writes them.

``manifest.json`` and the metadata embedded in every artifact are dataclasses
(``edgecls.export.manifest.Manifest``, ``edgecls.runtime.metadata.ModelMetadata``): their
schema follows the fields and type hints. The bench JSON is built as plain dicts and
checked by ``edgecls.bench.schema``; its schema follows the keys that validator requires.
The documentation site prints these (``scripts/mkdocs_hooks.py``), so a renamed field shows there.

    python -m edgecls.api.schemas manifest      # one schema as JSON
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from typing import Any

_JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def dataclass_schema(cls: type, title: str | None = None) -> dict[str, Any]:
    """The JSON Schema of ``dataclasses.asdict(instance of cls)``: fields without a
    default are required, extra keys are allowed (readers ignore additions)."""
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        properties[f.name] = type_schema(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema = {"title": title or cls.__name__, "type": "object", "properties": properties,
              "required": required}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc:
        schema["description"] = " ".join(doc.split())
    return schema


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one type hint (the subset the written dataclasses use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is Any:
        return {}
    if dataclasses.is_dataclass(hint):
        return dataclass_schema(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(arg) for arg in args]}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is tuple:
        return {"type": "array", "prefixItems": [type_schema(a) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1]) if args else {}}
    raise TypeError(f"no JSON Schema for the type hint {hint!r}")


def manifest_schema() -> dict[str, Any]:
    """``manifest.json`` (``edgecls export``)."""
    from edgecls.export.manifest import Manifest

    return _document(dataclass_schema(Manifest, "manifest.json"))


def metadata_schema() -> dict[str, Any]:
    """The metadata every artifact carries (``edgecls inspect`` shows it)."""
    from edgecls.runtime.metadata import ModelMetadata

    return _document(dataclass_schema(ModelMetadata, "artifact metadata"))


def bench_schema() -> dict[str, Any]:
    """``edgecls bench --json`` files, as ``edgecls report`` accepts them."""
    from edgecls.bench import schema as bench

    latency = _required_keys({key: (int, float) for key in bench.LATENCY_KEYS})
    record = _required_keys(bench._RECORD)
    record["properties"]["status"] = {"enum": list(bench.STATUSES)}
    record["properties"]["latency"] = {"anyOf": [latency, {"type": "null"}]}
    record["properties"]["accuracy"] = {"anyOf": [_required_keys({"images": int, "top1": (int, float)}),
                                                  {"type": "null"}]}
    record["properties"]["labels"] = {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                {"type": "null"}]}
    top = _required_keys(bench._TOP_LEVEL)
    top["properties"].update({
        "schema_version": {"const": bench.SCHEMA_VERSION},
        "kind": {"const": bench.REPORT_KIND},
        "machine": _required_keys(bench._MACHINE),
        "records": {"type": "array", "items": record},
        "hosts": {"type": "array", "items": _required_keys({"host": str, "status": str})},
    })
    top["title"] = "edgecls bench JSON"
    return _document(top)


def _required_keys(spec: dict[str, Any]) -> dict[str, Any]:
    """An object schema requiring the keys of a validator's ``{key: type(s)}`` spec."""
    def one(kind: Any) -> dict[str, Any]:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = sorted({_SCALARS.get(k, "object" if k is dict else "array") for k in kinds})
        return {"type": names[0] if len(names) == 1 else names}

    return {"type": "object", "properties": {key: one(kind) for key, kind in spec.items()},
            "required": list(spec)}


def _document(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": _JSON_SCHEMA, **schema}


SCHEMAS = {"manifest": manifest_schema, "metadata": metadata_schema, "bench": bench_schema}


def main(argv: list[str] | None = None) -> int:
    names = argv if argv is not None else sys.argv[1:]
    unknown = [name for name in names if name not in SCHEMAS]
    if not names or unknown:
        print(f"usage: python -m edgecls.api.schemas {{{','.join(SCHEMAS)}}}", file=sys.stderr)
        return 2
    for name in names:
        print(json.dumps(SCHEMAS[name](), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
