"""What the CLI prints: results on stdout (tables, or JSON with ``--json``), everything else —
progress, live status lines, notes and errors — on stderr, so ``--json`` output always parses."""

from __future__ import annotations

from datetime import UTC, datetime
import json
import sys
import time
from typing import Any


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def emit_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Columns are ``(key, header)``; values are shown as given (None → empty)."""
    cells = [[h.upper() for _, h in columns]]
    cells += [["" if row.get(key) is None else str(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in cells)


def human_size(n: int | float | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local_time(value: str | None) -> str:
    moment = parse_time(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def seconds_text(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def duration(start: str | None, end: str | None) -> str:
    begun, ended = parse_time(start), parse_time(end)
    if not begun or not ended:
        return ""
    return seconds_text((ended - begun).total_seconds())


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class StatusLine:
    """A line on stderr rewritten in place on a terminal; elsewhere (CI logs, pipes) a new line
    only when ``key`` changes, so logs show each step once instead of a line per poll."""

    def __init__(self) -> None:
        self.tty = _stderr_is_tty()
        self._last_key: object = None
        self._width = 0

    def update(self, text: str, *, key: object = None) -> None:
        if self.tty:
            pad = max(0, self._width - len(text))
            sys.stderr.write("\r" + text + " " * pad)
            self._width = len(text)
            sys.stderr.flush()
        elif key != self._last_key or key is None:
            note(text)
        self._last_key = key

    def finish(self) -> None:
        if self.tty and self._width:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._width = 0


class UploadProgress:
    """``progress(sent, total)`` for :class:`~troy_cli.multipart.MultipartFile`: a live percentage
    on a terminal, quarter steps elsewhere."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.line = StatusLine()
        self.started = time.monotonic()
        self._shown_at = 0.0

    def __call__(self, sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        now = time.monotonic()
        if self.line.tty and sent < total and now - self._shown_at < 0.1:
            return
        self._shown_at = now
        elapsed = max(now - self.started, 1e-6)
        text = (
            f"uploading {self.label}: {percent:3d}% ({human_size(sent)} of {human_size(total)}, "
            f"{human_size(sent / elapsed)}/s)"
        )
        self.line.update(text, key=percent // 25)
        if sent >= total:
            self.line.finish()
