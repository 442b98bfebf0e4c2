"""Alarm webhooks: an HTTP POST of an alarm's JSON to a URL configured per severity.

    twinview serve SITE --alarm-webhook critical=https://pager.example/hook --alarm-webhook high=...

A subscriber of the runtime's AlarmsChanged events. Each change of an alarm of
a configured severity (activated, acknowledged, shelved, returned, ...) is
queued and POSTed by one background thread with the standard library (urllib),
so a slow or dead endpoint never holds the twin up; failures are counted and
the last one kept for the status panel, and the queue is bounded (oldest
dropped, counted).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from typing import Any

from twinview.twin.events import AlarmsChanged

log = logging.getLogger("twinview.webhook")
SEVERITIES = ("low", "medium", "high", "critical")


def parse_webhooks(specs: list[str] | None) -> dict[str, str]:
    """['critical=https://...', ...] -> {severity: url}; ValueError with a readable message."""
    out: dict[str, str] = {}
    for spec in specs or ():
        severity, sep, url = spec.partition("=")
        severity = severity.strip().lower()
        if not sep or severity not in SEVERITIES:
            raise ValueError(f"expected SEVERITY=URL with a severity of {', '.join(SEVERITIES)}, got {spec!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook URL must start with http:// or https://, got {url!r}")
        out[severity] = url
    return out


class AlarmWebhook:
    """POSTs alarm changes to the URL of their severity, from its own thread."""

    def __init__(self, runtime: Any, urls: dict[str, str], timeout: float = 5.0, max_queue: int = 1000, site: str = ""):
        self.runtime = runtime
        self.urls = dict(urls)
        self.timeout = timeout
        self.site = site or runtime.site.name
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.counters = {"sent": 0, "failed": 0, "dropped": 0}
        self.last_error = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> "AlarmWebhook":
        self.runtime.events.subscribe(AlarmsChanged, self._on_alarms, owner=self)
        self._thread = threading.Thread(target=self._run, name="twinview-alarm-webhook", daemon=True)
        self._thread.start()
        return self

    def _on_alarms(self, event: AlarmsChanged) -> None:
        for alarm in event.alarms:
            url = self.urls.get(alarm.get("severity", ""))
            if url is None:
                continue
            body = {"site": self.site, "time": event.now, "alarm": alarm, "floods": list(event.floods)}
            try:
                self.queue.put_nowait((url, body))
            except queue.Full:
                self.counters["dropped"] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                url, body = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            data = json.dumps(body, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json", "User-Agent": "twinview"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                self.counters["sent"] += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.counters["failed"] += 1
                self.last_error = f"{url}: {getattr(exc, 'reason', exc)}"
                log.warning("alarm webhook failed: %s", self.last_error)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty (tests, shutdown)."""
        import time

        end = time.monotonic() + timeout
        while not self.queue.empty() and time.monotonic() < end:
            time.sleep(0.01)
        return self.queue.empty()

    def stop(self) -> None:
        self.runtime.events.release(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1)
            self._thread = None
