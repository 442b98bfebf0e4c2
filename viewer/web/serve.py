"""`twinview serve` and `twinview export-xr`: the live site in browsers and headsets.

serve(): one port for the page, the site GLB, site.json and the live websocket;
a Driver steps the runtime at ~20 Hz (there is no render loop on a server) and
the WebPublisher, a subscriber of the runtime, pushes what changed to the
bridge and answers pages' commands. With `tls` (twinview.security.tls) it serves
HTTPS and WSS and offers the local CA on trust.html; `allowed_hosts` are the
names the server answers to (DNS rebinding). serve() stops cleanly on Ctrl-C
and SIGTERM (a service manager's stop) and notes start and stop in the audit log.
export_static(): a self-contained folder (page, the three.js modules
it needs, GLB, site.json) to host anywhere; open it with
?bridge=wss://host:port/ws to go live.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from twinview.security.tls import ServerTls, machine_names
from twinview.site import LoadedSite
from twinview.twin.runtime import Driver, Runtime

from .assets import STATIC_DIR, THREE_URL, page_files, three_files, three_root
from .bridge import WebBridge
from .export import build_gltf, glb_bytes
from .metrics import Metrics
from .publisher import CommandHandler, WebPublisher
from .sitejson import GLB_NAME, site_json
from .trust import ssl_context, trust_files

DEFAULT_PORT = 8765
log = logging.getLogger("twinview.web")


def site_files(loaded: LoadedSite, tls: ServerTls | None = None) -> dict[str, Path | bytes]:
    """Everything the bridge serves over HTTP: page, three.js modules, site.json, the GLB, trust.html."""
    files: dict[str, Path | bytes] = dict(page_files())
    files.update(trust_files(tls))
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
    tls: ServerTls | None = None,
    **options: Any,
) -> WebBridge:
    """A WebBridge serving this site's page (not started); HTTPS and WSS with `tls`."""
    return WebBridge(
        [d.id for d in loaded.site.devices],
        site_files(loaded, tls),
        ssl_context=ssl_context(tls) if tls is not None else None,
        host=host,
        port=port,
        authenticate=authenticate,
        allowed_origins=allowed_origins,
        max_rate=max_rate,
        site_name=loaded.site.name,
        **options,
    )


@dataclass
class WebServer:
    """A running bridge, the publisher that feeds it, and the driver that steps the runtime."""

    bridge: WebBridge
    publisher: WebPublisher
    driver: Driver

    @property
    def url(self) -> str:
        return self.bridge.url

    @property
    def runtime(self) -> Runtime:
        return self.publisher.runtime

    def stop(self) -> None:
        self.driver.stop()
        self.publisher.close()
        self.bridge.stop()
        self.runtime.stop()


def default_allowed_hosts(host: str) -> list[str]:
    """The Host names a server bound to `host` answers to: loopback names for a loopback
    address, else every name and address of this machine (and `host` itself)."""
    loopback = ["localhost", "127.0.0.1", "::1"]
    if host in loopback or host.startswith("127."):
        return [*loopback, host]
    return machine_names(host)


def audit_writer(runtime: Runtime) -> Callable[[dict], None] | None:
    """Where the web server's security events go: the command service's audit log, when there is one."""
    service = runtime.commands
    audit = getattr(service, "audit", None)
    if audit is None:
        return None

    def write(record: dict) -> None:
        try:
            audit.write(record)
        except OSError as exc:
            service.counters["audit_errors"] = service.counters.get("audit_errors", 0) + 1
            log.warning("cannot write the audit log: %s", exc)

    return write


def start_server(
    loaded: LoadedSite,
    runtime: Runtime,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    authenticate: Callable[[str], Any] | None = None,
    allowed_origins: Iterable[str] = (),
    rate: float = 20.0,
    max_rate: float = 10.0,
    handle_command: CommandHandler | None = None,
    tls: ServerTls | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> WebServer:
    """Start the bridge and step the runtime on a driver thread; returns at once. Call .stop() when done.

    authenticate: token -> Principal or None (actuation.token_authenticator());
    None makes the server read-only (pages cannot log in).
    Pages' commands go through runtime.commands (roles, interlocks, audit) when it is enabled.
    allowed_origins: other page origins allowed to open the websocket (e.g. where
    an export-xr bundle is hosted); the page's own origin always is.
    handle_command: a custom handler instead of the service (tests).
    tls: serve HTTPS and WSS with this certificate (twinview.security.tls).
    allowed_hosts: the Host names and addresses the server answers to (default:
    default_allowed_hosts(host)); others are refused on HTTP and websocket alike. '*' allows any.
    Sign-ins, their failures and lock-outs go to the runtime's audit log.
    """
    bridge = make_bridge(
        loaded, host, port, authenticate, allowed_origins, max_rate=max_rate, tls=tls,
        allowed_hosts=default_allowed_hosts(host) if allowed_hosts is None else allowed_hosts,
        on_security_event=audit_writer(runtime),
    ).start()  # fmt: skip
    try:
        if handle_command is None and runtime.commands is not None:
            from .actuation import ServiceCommandHandler

            handle_command = ServiceCommandHandler(runtime.commands, bridge)
        publisher = WebPublisher(runtime, bridge, handle_command, rate=max_rate)
        bridge.metrics = Metrics(runtime, bridge)
        publisher.publish_all()
        driver = Driver(runtime, rate, before_step=publisher.before_step).start()
        bridge.history_provider = twin_history(runtime, driver)
        audit = getattr(getattr(runtime, "commands", None), "audit", None)
        if getattr(audit, "path", None) is not None:
            from .auditlog import command_log_provider

            bridge.command_log_provider = command_log_provider(audit.path)
    except BaseException:
        bridge.stop()
        raise
    return WebServer(bridge, publisher, driver)


def twin_history(runtime: Runtime, driver: Driver) -> Callable[..., tuple]:
    """(device, point, since) -> (times, values, source, window) for trend charts.

    Within the twin's in-memory window (history_seconds) the values come from the
    runtime (read on its thread, Driver.call); further back, from the history store
    the runtime is recorded into (a read-only handle of its own, binned to about
    1000 points, good values only), when there is one. source is "memory" or "store", window the
    seconds that source covers (None: as far as the store goes)."""
    readers: dict[str, Any] = {}
    lock = threading.Lock()

    def from_store(device: str, point: str, since: float) -> tuple | None:
        store = getattr(getattr(runtime, "recorder", None), "store", None)
        where = getattr(store, "root", None) or getattr(store, "url", None)
        if store is None or where is None:
            return None
        from twinview.history import open_store

        with lock:
            reader = readers.get("store")
            if reader is None:
                reader = readers["store"] = open_store(where, runtime.site.name, readonly=True)
            ids = reader.ids([f"{device}/{point}"], create=False)
            if len(ids) == 0 or int(ids[0]) < 0:
                return None
            now = time.time()
            series = reader.series(int(ids[0]), now - since, now, max_points=1000)
        t, v, q = series.t, series.v, getattr(series, "q", None)
        if q is not None and len(q) == len(t):  # the store also keeps quality changes: chart good values only
            keep = q == 0
            t, v = t[keep], v[keep]
        return t, v, "store", None

    def history(device: str, point: str, since: float | None = None) -> tuple:
        window = float(runtime.state.history_seconds)
        if since is not None and since > window:
            try:
                got = from_store(device, point, since)
            except Exception:  # no store, unknown there, or unreadable: the in-memory window still answers
                got = None
            if got is not None:
                return got
        t, v = driver.call(lambda: runtime.state.history(device, point), timeout=5.0)
        return t, v, "memory", window

    return history


def serve(
    loaded: LoadedSite,
    runtime: Runtime,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    authenticate: Callable[[str], Any] | None = None,
    allowed_origins: Iterable[str] = (),
    stop: threading.Event | None = None,
    announce: Callable[[str], None] = print,
    tls: ServerTls | None = None,
    allowed_hosts: Iterable[str] | None = None,
    on_started: Callable[[WebServer], None] | None = None,
) -> int:
    """Serve until Ctrl-C, SIGTERM or until `stop` is set; stops cleanly and returns 0.

    Arguments as start_server(). The CLI: `twinview serve SITE [--mqtt URL] [--tls]`.
    """
    server = start_server(loaded, runtime, host, port, authenticate, allowed_origins, tls=tls, allowed_hosts=allowed_hosts)
    announce(f"serving {loaded.site.name} at {server.url} (websocket {server.bridge.ws_url}; "
             f"{'commands need a token' if authenticate else 'read-only'})")
    note = audit_writer(runtime)
    if note is not None:
        note({"event": "server", "state": "server_started", "outcome": "succeeded", "site": loaded.site.name,
              "reason": f"serving {server.url}"})  # fmt: skip
    stop = stop or threading.Event()
    why = ["stopped"]

    def on_sigterm(signum: int, frame: Any) -> None:
        why[0] = "SIGTERM"
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if on_started is not None:
            on_started(server)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        why[0] = "interrupted (Ctrl-C)"
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if note is not None:
            note({"event": "server", "state": "server_stopped", "outcome": "succeeded", "site": loaded.site.name,
                  "reason": f"{why[0]}: clean shutdown"})  # fmt: skip
            runtime.commands.audit.close()
        announce(f"stopped ({why[0]})")
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
