"""The columns every report rendering shows (terminal, Markdown, HTML), formatted once."""

from __future__ import annotations

from typing import Callable

from edgecls.bench.report import Row

_MB = 1e6


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _latency(row: Row, key: str) -> float | None:
    latency = row.record.get("latency")
    return latency.get(key) if latency else None


def _accuracy(row: Row, key: str) -> float | None:
    accuracy = row.record.get("accuracy")
    return accuracy.get(key) if accuracy else None


def _drop(row: Row) -> str:
    drop = row.drop_pp
    if drop is None:
        return "–"
    return "0.00pp" if abs(drop) < 0.005 else f"{drop:+.2f}pp"  # + is a loss, as in the export gate


def _top1_interval(row: Row) -> str:
    interval = _accuracy(row, "top1_interval")
    return "–" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _paired_interval(row: Row) -> str:
    p = row.paired
    return "–" if p is None else f"[{p.low_pp:+.2f}, {p.high_pp:+.2f}]pp"


def _changed(row: Row) -> str:
    p = row.paired
    return "–" if p is None else f"-{p.counts.right_to_wrong}/+{p.counts.wrong_to_right}"


def _worst_class(row: Row) -> str:
    worst = row.worst_class
    if worst is None or worst[1] <= 0:
        return "–"
    return f"{worst[0]} {worst[1]:+.1f}pp ({worst[2]:+d})"  # lost pp (net images lost)


def _memory(row: Row) -> float | None:
    memory = row.record.get("memory")
    return memory.get("peak_rss_mb") if memory else None


def _spread(row: Row) -> str:
    spread = _latency(row, "block_p50_spread_pct")
    return "–" if spread is None else f"{spread:.0f}%"


# (header, formatter, right-aligned, terminal header or None when not in the terminal table)
COLUMNS: list[tuple[str, Callable[[Row], str], bool, str | None]] = [
    ("model", lambda r: r.record["file"], False, "model"),
    ("format", lambda r: r.record["format"], False, None),
    ("precision", lambda r: r.record.get("precision") or "?", False, "prec"),
    ("threads", lambda r: str(r.record.get("threads") or "auto"), True, "thr"),
    ("top-1", lambda r: _num(_accuracy(r, "top1"), ".4f"), True, "top-1"),
    ("top-1 95%", _top1_interval, True, None),
    ("top-5", lambda r: _num(_accuracy(r, "top5"), ".4f"), True, None),
    ("macro F1", lambda r: _num(_accuracy(r, "macro_f1"), ".4f"), True, None),
    ("drop vs float", _drop, True, "drop"),
    ("drop vs float 95%", _paired_interval, True, None),
    ("changed -/+", _changed, True, None),
    ("worst class", _worst_class, False, None),
    ("p50 ms", lambda r: _num(_latency(r, "p50_ms"), ".2f"), True, "p50"),
    ("p99 ms", lambda r: _num(_latency(r, "p99_ms"), ".2f"), True, "p99"),
    ("FPS", lambda r: _num(_latency(r, "fps"), ".1f"), True, "FPS"),
    ("runs", lambda r: _num(_latency(r, "runs"), "d"), True, "runs"),
    ("p50 spread", _spread, True, "±p50"),
    ("size MB", lambda r: _num(r.record["size_bytes"] / _MB, ".2f"), True, "MB"),
    ("peak RSS MB", lambda r: _num(_memory(r), ".0f"), True, "RSS"),
    ("status", lambda r: r.record["status"], False, "status"),
]
TERMINAL_COLUMNS = [(short, fmt, right, short) for _, fmt, right, short in COLUMNS if short]
TERMINAL_CAPTION = ("p50/p99 latency in ms · size and peak RSS in MB · "
                    "drop: top-1 lost vs the fp32 model, + is a loss (else vs the export's float predictions, "
                    "else the --reference) · "
                    "±p50: spread of the p50 of 5 blocks of runs")


def columns_for(rows: list[Row]) -> list:
    """``COLUMNS`` less top-5 when no row has one (models of 5 classes or fewer, where it
    would be 1.0 by construction)."""
    if any(_accuracy(row, "top5") is not None for row in rows):
        return COLUMNS
    return [column for column in COLUMNS if column[0] != "top-5"]


def cells(row: Row, columns: list | None = None) -> list[str]:
    """The formatted cells of one row, in ``columns`` (default ``COLUMNS``) order."""
    return [fmt(row) for _, fmt, _, _ in columns or COLUMNS]


def headers(columns: list | None = None) -> list[str]:
    """Column headers in ``columns`` (default ``COLUMNS``) order."""
    return [name for name, _, _, _ in columns or COLUMNS]


def failure_notes(rows: list[Row]) -> list[str]:
    """"file: status: reason" for every record that did not pass."""
    return [f"{r.record['file']}" + (f" ({r.record['threads']} threads)" if r.record.get("threads") else "")
            + f": {r.record['status']}: {r.record.get('reason') or 'no reason given'}"
            for r in rows if r.record["status"] != "passed"]


def baseline_notes(rows: list[Row]) -> list[str]:
    """"file: drop vs ..." for every row compared with the float model of its export's predictions."""
    return [f"{r.record['file']}: drop vs the {r.float_source}" for r in rows
            if r.float_source and r.float_source.startswith("float model")]


def host_lines(hosts: list[dict]) -> list[tuple[str, str]]:
    """(status, "host: status ... reason") for every ssh host of a ``bench --host`` report."""
    lines = []
    for host in hosts:
        text = f"{host['host']}: {host['status']}"
        if host.get("seconds") is not None:
            text += f" in {host['seconds']:.0f} s"
        environment = host.get("environment") or {}
        if environment:
            text += (f" · {environment.get('action')} {environment.get('python')} "
                     f"(Python {environment.get('python_version')})")
            if environment.get("installed"):
                text += f", installed {', '.join(environment['installed'])}"
            if environment.get("source"):
                text += f" ({environment['source']})"
        if host.get("reason"):
            text += f" · {host['reason']}"
        lines.append((host["status"], text))
    return lines


def machine_summary(machine: dict) -> str:
    """One line describing a machine."""
    parts = [machine.get("device_model") or machine.get("cpu_model"),
             f"{machine.get('cores_logical')} cores", machine.get("os"), f"Python {machine.get('python')}"]
    packages = machine.get("packages") or {}
    if packages:
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(packages.items())))
    return " · ".join(str(p) for p in parts if p)
