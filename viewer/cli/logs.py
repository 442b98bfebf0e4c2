"""Logging, configured in one place for every command: -v for more, --log-format json for machines."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(verbosity: int = 0, fmt: str = "text") -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv; to stderr, so stdout stays the command's output."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("twinview").setLevel(level)
    for noisy in ("websockets", "asyncio", "trimesh", "PIL"):  # libraries speak only when asked twice (wgpu sets its own logger class)
        logging.getLogger(noisy).setLevel(max(level, logging.INFO if verbosity >= 2 else logging.WARNING))
