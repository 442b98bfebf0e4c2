"""`twinview serve` and `twinview export-xr`: the live site in browsers and headsets.

serve(): one port for the page, the site GLB, site.json and the live websocket;
a headless loop (no render loop here) drives the LiveSite at ~20 Hz, pushes the
looks of changed devices to the bridge and hands queued commands to the command
handler. export_static(): a self-contained folder (page, the three.js modules
it needs, GLB, site.json) to host anywhere; open it with
?bridge=wss://host:port/ws to go live.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from twinview.site import LoadedSite

from .assets import STATIC_DIR, page_files, three_files, three_root, THREE_URL
from .bridge import CommandRequest, WebBridge
from .export import build_gltf, glb_bytes
from .sitejson import GLB_NAME, site_json

CommandHandler = Callable[[CommandRequest], dict]
DEFAULT_PORT = 8765


def site_files(loaded: LoadedSite) -> dict[str, Path | bytes]:
    """Everything the bridge serves over HTTP: page, three.js modules, site.json, the GLB."""
    files: dict[str, Path | bytes] = dict(page_files())
    files["site.json"] = site_json(loaded)
    files[GLB_NAME] = glb_bytes(*build_gltf(loaded))
    return files


def make_bridge(
    loaded: LoadedSite,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    authenticate: Callable[[str], Any] | None = None,
    allowed_origins: Iterable[str] = (),
    max_rate: float = 10.0,
    **options: Any,
) -> WebBridge:
    """A WebBridge serving this site's page (not started)."""
    return WebBridge(
        [d.id for d in loaded.site.devices],
        site_files(loaded),
        host=host,
        port=port,
        authenticate=authenticate,
        allowed_origins=allowed_origins,
        max_rate=max_rate,
        site_name=loaded.site.name,
        **options,
    )


def refuse_all(request: CommandRequest) -> dict:
    """The command handler when no command service is configured."""
    return {"type": "command_result", "ref": request.ref, "device": request.device, "command": request.command,
            "ok": False, "state": "refused", "reason": "commands are not enabled on this server"}


class HeadlessLoop:
    """Drives a LiveSite without a window: update() at `rate` Hz, changed looks to the bridge.

    Everything that touches twin state runs on this loop's thread: the LiveSite's
    update, the look evaluation and the command handler.
    """

    def __init__(
        self,
        live: Any,
        bridge: WebBridge,
        rate: float = 20.0,
        handle_command: CommandHandler | None = None,
        commands: Any = None,
    ):
        self.live = live
        self.bridge = bridge
        self.period = 1.0 / rate
        self.handle_command = handle_command or refuse_all
        # The loop polls the command service itself unless the LiveSite already does.
        self.commands = commands if commands is not None and getattr(live, "commands", None) is not commands else None
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        live.listeners.append(self._on_changed)

    def _pending(self) -> Iterable[str]:
        commands = self.commands or getattr(self.live, "commands", None)
        if commands is None or not hasattr(commands, "pending_devices"):
            return ()
        return commands.pending_devices()

    def _on_changed(self, indices: set[int], looks: dict) -> None:
        self.bridge.publish_twin(self.live.twin, looks, self._pending())

    def publish_all(self) -> None:
        """Publish every device once (so the first snapshot is complete)."""
        from twinview.twin.overlays import evaluate_many

        twin = self.live.twin
        looks = evaluate_many(twin, range(len(twin.devices)))
        self.live.looks.update(looks)
        self.bridge.publish_twin(twin, looks, self._pending())

    def step(self) -> set[int]:
        """One iteration: answer queued commands, then update the twin."""
        for request in self.bridge.take_commands():
            try:
                reply = self.handle_command(request)
            except Exception as exc:  # a failing handler refuses that command; the loop goes on
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                reply = {"type": "command_result", "ref": request.ref, "device": request.device,
                         "command": request.command, "ok": False, "state": "failed", "reason": "internal error"}
            if reply:
                self.bridge.send_to(request.client, reply)
        changed = self.live.update()
        if self.commands is not None:
            ids = self.commands.poll()
            if changed:
                self.commands.on_values(changed)
            if ids:  # a command started or ended: the PENDING flag of these devices changed
                twin = self.live.twin
                again = {i for i in map(_index_or_none(twin), ids) if i is not None}
                if again:
                    from twinview.twin.overlays import evaluate_many

                    looks = evaluate_many(twin, again)
                    self.live.looks.update(looks)
                    self.bridge.publish_twin(twin, looks, self._pending())
        return changed

    def start(self) -> "HeadlessLoop":
        if self._thread is None:
            self.publish_all()
            self._thread = threading.Thread(target=self._run, name="twinview-headless", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # counted and shown, never the end of the loop
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def twin_history(live: Any) -> Callable[[str, str], tuple]:
    """(device, point) -> (times, values) from the twin's in-memory history, for trend charts.

    Called on the bridge's thread: History.arrays() copies, so at worst the newest
    sample of a point being written at that instant is missing or repeated.
    """

    def history(device: str, point: str) -> tuple:
        return live.twin.history(device, point)

    return history


def _index_or_none(twin: Any) -> Callable[[Any], int | None]:
    def index(device: Any) -> int | None:
        try:
            return twin.index(device)
        except KeyError:
            return None

    return index


@dataclass
class WebServer:
    """A running bridge plus the loop that feeds it."""

    bridge: WebBridge
    loop: HeadlessLoop

    @property
    def url(self) -> str:
        return self.bridge.url

    def stop(self) -> None:
        self.loop.stop()
        self.bridge.stop()
        try:
            self.loop.live.stop()
        except Exception:
            pass


def start_server(
    loaded: LoadedSite,
    live: Any,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    authenticate: Callable[[str], Any] | None = None,
    commands: Any = None,
    allowed_origins: Iterable[str] = (),
    rate: float = 20.0,
    max_rate: float = 10.0,
    handle_command: CommandHandler | None = None,
) -> WebServer:
    """Start the bridge and the headless loop; returns at once. Call .stop() when done.

    live: a LiveSite (twinview.app.live) for the site.
    authenticate: token -> Principal or None (actuation.token_authenticator());
    None makes the server read-only (pages cannot log in).
    commands: the CommandService (twinview.twin.commands) that pages' commands go
    through; the loop polls it (unless it is live.commands, which LiveSite polls).
    allowed_origins: other page origins allowed to open the websocket (e.g. where
    an export-xr bundle is hosted); the page's own origin always is.
    handle_command: a custom handler instead of the service (tests).
    """
    bridge = make_bridge(loaded, host, port, authenticate, allowed_origins, max_rate=max_rate)
    bridge.history_provider = twin_history(live)
    audit = getattr(commands, "audit", None)
    if getattr(audit, "path", None) is not None:
        from .auditlog import command_log_provider

        bridge.command_log_provider = command_log_provider(audit.path)
    bridge.start()
    try:
        if handle_command is None and commands is not None:
            from .actuation import ServiceCommandHandler

            handle_command = ServiceCommandHandler(commands, bridge)
        loop = HeadlessLoop(live, bridge, rate, handle_command, commands).start()
    except BaseException:
        bridge.stop()
        raise
    return WebServer(bridge, loop)


def serve(
    loaded: LoadedSite,
    live: Any,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    authenticate: Callable[[str], Any] | None = None,
    commands: Any = None,
    allowed_origins: Iterable[str] = (),
    stop: threading.Event | None = None,
    announce: Callable[[str], None] = print,
) -> int:
    """Serve until interrupted (Ctrl-C) or until `stop` is set; returns an exit code.

    Arguments as start_server(). The CLI: `twinview serve SITE [--mqtt URL]`.
    """
    server = start_server(loaded, live, host, port, authenticate, commands, allowed_origins)
    announce(f"serving {loaded.site.name} at {server.url} (websocket {server.bridge.ws_url}; "
             f"{'commands need a token' if authenticate else 'read-only'})")
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def export_static(loaded: LoadedSite, out_dir: str | Path) -> Path:
    """Write a self-contained static bundle of the page for this site; returns its index.html.

    Host the folder on any static web server (or open it from a server next to
    the bridge) and add ?bridge=wss://HOST:PORT/ws to go live; the bridge must
    allow the bundle's origin (serve's allowed_origins).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, out / path.name)
    root = three_root()
    for rel in three_files():
        target = out / THREE_URL / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    license_file = root / "LICENSE"
    if license_file.is_file():
        shutil.copy2(license_file, out / THREE_URL / "LICENSE")
    (out / "site.json").write_bytes(site_json(loaded))
    (out / GLB_NAME).write_bytes(glb_bytes(*build_gltf(loaded)))
    return out / "index.html"
