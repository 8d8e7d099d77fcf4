"""The bench report schema: what ``edgecls bench --json`` writes and ``edgecls report`` reads.

A report file is one JSON object (keys documented in ``edgecls/bench/SCHEMA.md``)::

    {"schema_version": 1, "kind": "edgecls-bench", "created": ..., "edgecls_version": ...,
     "machine": {...}, "settings": {...}, "records": [{...}, ...]}

One record per measured model (and thread count). Validation here is structural: it
names the first problems found so that ``report`` can skip a bad file with a reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REPORT_KIND = "edgecls-bench"

STATUS_PASSED = "passed"
STATUS_BELOW_FLOOR = "below_floor"
STATUS_FAILED = "failed"
STATUSES = (STATUS_PASSED, STATUS_BELOW_FLOOR, STATUS_FAILED)

LATENCY_KEYS = ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fps")

_TOP_LEVEL = {
    "schema_version": int,
    "kind": str,
    "created": str,
    "machine": dict,
    "settings": dict,
    "records": list,
}
_MACHINE = {"cpu_model": str, "cores_logical": int, "os": str, "python": str, "arch": str}
_RECORD = {"model": str, "format": str, "status": str, "size_bytes": int, "threads": (int, type(None))}


class SchemaError(ValueError):
    """A report file that is not a valid bench report of this schema version."""


def validate_report(data: Any) -> None:
    """Raises ``SchemaError`` naming what is wrong with a parsed report object."""
    if not isinstance(data, dict):
        raise SchemaError("top level is not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version is {version!r}, this edgecls reads version {SCHEMA_VERSION}"
        )
    if data.get("kind") != REPORT_KIND:
        raise SchemaError(f"kind is {data.get('kind')!r}, expected {REPORT_KIND!r}")
    _check_keys(data, _TOP_LEVEL, "report")
    _check_keys(data["machine"], _MACHINE, "machine")
    for index, record in enumerate(data["records"]):
        _validate_record(record, f"records[{index}]")
    hosts = data.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list):
            raise SchemaError("hosts is not a list")
        for index, host in enumerate(hosts):
            _check_keys(host, {"host": str, "status": str}, f"hosts[{index}]")


def _validate_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise SchemaError(f"{where} is not an object")
    _check_keys(record, _RECORD, where)
    if record.get("machine") is not None:
        _check_keys(record["machine"], _MACHINE, f"{where}.machine")
    if record["status"] not in STATUSES:
        raise SchemaError(f"{where}.status is {record['status']!r}, expected one of {STATUSES}")
    latency = record.get("latency")
    if latency is not None:
        _check_keys(latency, {k: (int, float) for k in LATENCY_KEYS}, f"{where}.latency")
    labels = record.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise SchemaError(f"{where}.labels must be a list of strings or null")
    accuracy = record.get("accuracy")
    if accuracy is not None:
        _check_keys(accuracy, {"images": int, "top1": (int, float)}, f"{where}.accuracy")


def _check_keys(obj: Any, spec: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where} is not an object")
    for key, kind in spec.items():
        if key not in obj:
            raise SchemaError(f"{where} lacks the key {key!r}")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise SchemaError(f"{where}.{key} has the wrong type ({type(obj[key]).__name__})")


def load_report(path: str | Path) -> dict[str, Any]:
    """Reads and validates one report file.

    Raises:
        SchemaError: the file is unreadable, not JSON, or not a report of this version.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemaError(f"cannot read it: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"not valid JSON: {exc}") from None
    validate_report(data)
    return data


def dump_report(report: dict[str, Any]) -> str:
    """Serializes a report with stable key order and a trailing newline."""
    return json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
