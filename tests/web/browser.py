"""Drive headless Chromium from pytest through tests/web/driver.mjs (playwright-core)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WEB = ROOT / "viewer" / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM}"
    if shutil.which("node") is None:
        return "node is not installed"
    for package in ("playwright-core", "three", "iwer"):
        if not (WEB / "node_modules" / package / "package.json").exists():
            return f"{package} is not installed: run `npm ci` in {WEB}"
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    """One Chromium (one page) behind the driver's line protocol."""

    def __init__(self, iwer: bool = False, width: int = 800, height: int = 600, touch: bool = False):
        self.proc = subprocess.Popen(
            ["node", str(HERE / "driver.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        self._replies: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next = 0
        try:
            self.call("launch", iwer=iwer, width=width, height=height, touch=touch, timeout=60)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                self._replies.put(json.loads(line))
        self._replies.put(None)

    def call(self, op: str, timeout: float = 30.0, **params):
        self._next += 1
        request = {"id": self._next, "op": op, **params}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise BrowserError(f"{op}: no reply within {timeout} s") from None
        if reply is None:
            raise BrowserError(f"{op}: the driver exited: {self.proc.stderr.read()[-2000:]}")
        if not reply.get("ok"):
            raise BrowserError(f"{op}: {reply.get('error')}\n--- page console ---\n" + "\n".join(self.console()))
        return reply.get("result")

    def console(self) -> list[str]:
        try:
            self.proc.stdin.write(json.dumps({"id": -1, "op": "console"}) + "\n")
            self.proc.stdin.flush()
            reply = self._replies.get(timeout=5)
            return reply.get("result") or [] if reply else []
        except Exception:
            return []

    # --- conveniences ----------------------------------------------------------------

    def goto(self, url: str):
        result = self.call("goto", url=url, timeout=60)
        if result.get("error"):
            raise BrowserError(f"page failed: {result['error']}\n" + "\n".join(self.console()))
        return result

    def eval(self, fn: str, arg=None):
        return self.call("eval", fn=fn, arg=arg)

    def wait(self, fn: str, arg=None, timeout: float = 15.0):
        try:
            return self._wait(fn, arg, timeout)
        except BrowserError as exc:
            raise BrowserError(f"{exc}\nwaiting for: {fn} ({arg!r})") from None

    def _wait(self, fn: str, arg, timeout: float):
        self._next += 1
        request = {"id": self._next, "op": "wait", "fn": fn, "arg": arg, "timeout": int(timeout * 1000)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        try:
            reply = self._replies.get(timeout=timeout + 10)
        except queue.Empty:
            raise BrowserError("wait: the driver did not answer") from None
        if reply is None or not reply.get("ok"):
            raise BrowserError(f"wait: {reply.get('error') if reply else 'driver exited'}\n" + "\n".join(self.console()))
        return reply.get("result")

    def key(self, key: str):
        return self.call("key", key=key)

    def text(self, selector: str = "body") -> str:
        return self.eval("(s) => document.querySelector(s).innerText", selector)

    def focused(self) -> dict:
        """What has the keyboard focus: tag, id, text, aria-label and data-device/-command of it or its parent."""
        return self.eval(
            "() => { const e = document.activeElement; const c = e && e.closest('[data-command]');"
            " return e && { tag: e.tagName, id: e.id, text: (e.innerText || '').trim(), label: e.getAttribute('aria-label'),"
            " device: e.dataset.device || null, command: c ? c.dataset.command : null }; }"
        )

    def tab_until(self, predicate: str, limit: int = 80) -> dict:
        """Press Tab until `predicate(focused)` (JS, given the focused() dict) holds; the focused() of that element."""
        for _ in range(limit):
            self.key("Tab")
            if self.eval(f"() => {{ const e = document.activeElement; const c = e && e.closest('[data-command]');"
                         f" const f = e && {{ tag: e.tagName, id: e.id, text: (e.innerText || '').trim(), device: e.dataset.device || null,"
                         f" command: c ? c.dataset.command : null }}; return !!f && ({predicate})(f); }}"):
                return self.focused()
        raise BrowserError(f"Tab did not reach {predicate} in {limit} presses; at {self.focused()}")

    def xr(self, method: str, **params):
        return self.call("xr", method=method, params=params, timeout=30)

    def screenshot(self, path: Path) -> Path:
        self.call("screenshot", path=str(path))
        return path

    def close(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"id": 0, "op": "close"}) + "\n")
                proc.stdin.flush()
                proc.wait(10)
            except Exception:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except Exception:
                pass

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
