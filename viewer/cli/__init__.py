"""The twinview command line."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from twinview.site import SiteError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SITE = 3
DESKTOP_MODULES = ("pygfx", "wgpu", "rendercanvas", "imgui_bundle", "glfw")


def desktop_installed() -> bool:
    """True when the [desktop] extra (the GPU stack and window toolkit) can be imported."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in DESKTOP_MODULES)


def needs_desktop(command: str) -> str:
    return (f"error: `twinview {command}` draws with the GPU stack, which is not installed: "
            "pip install 'twinview[desktop]'")


def demo_site_path() -> Path:
    return Path(str(resources.files("twinview.assets").joinpath("demo")))


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("width and height must be between 16 and 8192")
    return w, h


def _open(site_dir: Path, quiet: bool = False):
    from twinview.app.progress import ConsoleProgress
    from twinview.site import open_site

    progress = ConsoleProgress(f"opening {site_dir.name}") if not quiet else None
    loaded = open_site(site_dir, progress)
    if progress:
        progress.done()
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)
    return loaded


def _live(loaded, args, record: bool = False):
    """The site's runtime: the embedded simulator unless another source is named; recorded when asked."""
    from twinview.cli.sources import runtime_from_args

    runtime = runtime_from_args(loaded, args)
    if record:
        from twinview.cli.memory import record_runtime

        runtime.recorder = record_runtime(runtime, args)
    return runtime


def cmd_check(args) -> int:
    from twinview.site import check_site, load_manifest
    from twinview.twin.alarms import lint

    problems = check_site(args.site)
    if not any(p.severity == "error" and "site.toml" in p.file for p in problems):
        try:
            problems += lint(load_manifest(args.site)[0])
        except SiteError:
            pass
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(p)
    if errors:
        print(f"{args.site}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)", file=sys.stderr)
        return EXIT_SITE
    print(f"{args.site}: ok ({len(problems)} warning(s))")
    return EXIT_OK


def cmd_render(args) -> int:
    from twinview.scene.binding import SceneBinding
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    loaded = _open(Path(args.site), quiet=args.quiet)
    view = SiteView(loaded)
    past = _past(loaded, args) if args.at else None
    if past is not None and not isinstance(past, tuple):
        return past  # an exit code: the time or the store was not usable
    live = _live(loaded, args) if _wants_live(args) and past is None else None
    if args.select:
        index = view.index_of(args.select)
        if index is None:
            print(f"error: no device {args.select!r} in {loaded.site.name}", file=sys.stderr)
            return EXIT_USAGE
        view.select(index)
        if args.focus:
            view.focus(index)
    off = OffscreenView(view, args.size, quality=args.quality)
    if past is not None:
        twin, store = past
        SceneBinding(twin.runtime, view)
        twin.seek(twin.at)
    if live is not None:
        SceneBinding(live, view)
        live.run_for(args.wait)
    out = off.save(args.out)
    if live is not None:
        live.stop()
    if past is not None:
        store.close()
    when = f" as it was at {_stamp(past[0].at)}" if past is not None else ""
    print(f"wrote {out} ({args.size[0]}x{args.size[1]}){when}")
    return EXIT_OK


def _stamp(t: float) -> str:
    import time as _time

    return _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(t))


def _past(loaded, args):
    """(PastTwin at args.at, its store), or an exit code with one line saying why not."""
    from twinview.cli.memory import open_site_store, parse_time
    from twinview.twin.memory import PastTwin

    try:
        at = parse_time(args.at)
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = open_site_store(loaded.site, args.store, readonly=True)
    except (OSError, ValueError) as exc:
        print(f"error: no history for {loaded.site.name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    twin = PastTwin(loaded.site, store)
    span = twin.span()
    if span is None:
        store.close()
        print(f"error: the history of {loaded.site.name} is empty (record it: twinview record, or open it live)",
              file=sys.stderr)
        return EXIT_USAGE
    if at < span[0]:
        print(f"note: {_stamp(at)} is before the first record ({_stamp(span[0])}): showing no data", file=sys.stderr)
    twin.at = at
    return twin, store


def _wants_live(args) -> bool:
    return bool(getattr(args, "mqtt", None) or getattr(args, "replay", None) or getattr(args, "wait", 0))


def cmd_open(args, site_dir: Path | None = None) -> int:
    site_dir = site_dir or Path(args.site)
    if not desktop_installed():
        return _open_without_desktop(args, site_dir)
    from twinview.app.desktop import has_display, run_desktop
    from twinview.scene.binding import SceneBinding
    from twinview.scene.view import SiteView

    loaded = _open(site_dir)
    if not has_display():
        out = Path(args.screenshot or f"twinview-{site_dir.name}.png")
        from twinview.scene.offscreen import OffscreenView

        view = SiteView(loaded)
        live = _live(loaded, args, record=True)
        binding = SceneBinding(live, view)
        live.run_for(min(getattr(args, "wait", 0) or 3.0, 30.0))
        OffscreenView(view, (1280, 720), quality="high").save(out)
        binding.close()
        why = "DISPLAY is not set" if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) else \
            f"cannot open display {os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')}"
        print(f"No display found ({why}): rendered a screenshot to {out}, and serving the live web view instead.")
        try:
            return _serve(loaded, live, args)
        finally:
            _stop(live)
    view = SiteView(loaded)
    live = _live(loaded, args, record=True)
    try:
        run_desktop(view, live)  # the desktop binds the scene to the live twin, or to the past on the timeline
    finally:
        _stop(live)
    return EXIT_OK


def _stop(live) -> None:
    """Stop a runtime and close the store it was recorded into (what was written stays)."""
    live.stop()
    recorder = getattr(live, "recorder", None)
    if recorder is not None:
        recorder.close()
        recorder.store.close()


def _open_without_desktop(args, site_dir: Path) -> int:
    """A core install (no GPU stack): the same live site, in the browser."""
    print("The desktop viewer is not installed (pip install 'twinview[desktop]'): serving the live web view instead.")
    loaded = _open(site_dir)
    live = _live(loaded, args, record=True)
    try:
        return _serve(loaded, live, args)
    finally:
        _stop(live)


def _web_tls(args, names: list[str]):
    """The server certificate --tls asks for: the given one, else the local CA's (made once)."""
    from twinview.security.tls import ensure_server_cert, given_cert

    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if bool(cert) != bool(key):
        raise ValueError("--tls-cert and --tls-key go together")
    if cert:
        tls = given_cert(cert, key)
        _check_tls_context(tls)
        return tls
    tls = ensure_server_cert([n for n in names if n != "*"], new_ca=getattr(args, "new_ca", False))
    if tls.ca_made:
        print(f"made a local certificate authority: {tls.ca} (its key is readable by you only)")
    if tls.made:
        print(f"made a server certificate for {', '.join(tls.dns + tls.ips)}")
    return tls


def _check_tls_context(tls) -> None:
    """Load the certificate as the server will, so a problem is one line now, not a traceback later."""
    import ssl

    from twinview.security.tls import TlsError
    from twinview.web.trust import ssl_context

    try:
        ssl_context(tls)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"cannot serve TLS with {tls.cert} and {tls.key}: {exc}") from None


def _announce_web(server, args, tls) -> None:
    """Where to point a headset: the address on the network, as text and as a QR code."""
    import ipaddress
    from twinview.security.tls import local_addresses

    bridge = server.bridge
    host = args.host
    named = [d for d in (tls.dns if tls is not None and tls.ca is None else ()) if not d.startswith("*")]
    if named:  # a given certificate: its name, which browsers check
        host = named[0]
    elif host in ("0.0.0.0", "::", ""):
        addresses = sorted(local_addresses(), key=lambda a: ipaddress.ip_address(a).version)
        host = addresses[0] if addresses else "127.0.0.1"
    url = bridge.url_for(host)
    print(f"open {url}")
    if tls is not None and tls.ca is not None:
        print(f"headsets trust this server once: {url}trust.html (CA SHA-256 {tls.ca_fingerprint})")
    elif tls is not None:
        print(f"server certificate SHA-256 {tls.fingerprint}")
    qr = getattr(args, "qr", None)
    if qr or (qr is None and sys.stdout.isatty()):
        from twinview.cli.qr import qr_lines

        print("\n".join(qr_lines(url, color=True)))
    sys.stdout.flush()


def _serve(loaded, live, args) -> int:
    from twinview.security.tls import TlsError, machine_names
    from twinview.web.actuation import token_authenticator
    from twinview.web.assets import MissingThree
    from twinview.web.serve import serve

    use_tls = bool(getattr(args, "tls", False) or getattr(args, "tls_cert", None))
    if not use_tls and args.host in ("127.0.0.1", "localhost", "::1"):
        print("for headsets on your network: --host 0.0.0.0 --tls (WebXR needs https off localhost)")
    elif not use_tls:
        print("note: headsets enter VR only from https pages: add --tls")
    names = machine_names(args.host) + [h.strip().lower() for h in getattr(args, "allow_host", None) or ()]
    try:
        tls = _web_tls(args, names) if use_tls else None
    except (TlsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if tls is not None:
        names += [*tls.dns, *tls.ips]  # a given certificate's names are served too
    try:
        return serve(
            loaded, live, host=args.host, port=args.port,
            authenticate=token_authenticator(getattr(args, "users", None)),
            allowed_origins=tuple(getattr(args, "allow_origin", None) or ()),
            tls=tls, allowed_hosts=names,
            on_started=lambda server: _announce_web(server, args, tls),
        )  # fmt: skip
    except MissingThree as exc:
        print(f"error: the web view needs three.js from npm: {exc}\n"
              "  run packaging/setup.sh (npm ci in viewer/web), or set TWINVIEW_NODE_MODULES", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_serve(args) -> int:
    loaded = _open(Path(args.site))
    live = _live(loaded, args, record=True)
    try:
        return _serve(loaded, live, args)
    finally:
        _stop(live)


def cmd_export_xr(args) -> int:
    from twinview.web.serve import export_static

    loaded = _open(Path(args.site))
    index = export_static(loaded, args.out)
    print(f"wrote {index.parent}: host it anywhere and open {index.name}?bridge=wss://HOST:PORT/ws")
    return EXIT_OK


def cmd_demo(args) -> int:
    return cmd_open(args, demo_site_path())


def cmd_generate_site(args) -> int:
    from twinview.site.synthetic import generate_site

    out = generate_site(Path(args.out), args.devices, seed=args.seed)
    print(f"wrote a {args.devices}-device site to {out}")
    return EXIT_OK


def cmd_sim(args) -> int:
    import threading

    from twinview.connectors.simulator.plant import run_as_mqtt_publisher
    from twinview.site import load_manifest

    site, _ = load_manifest(args.site)
    stop = threading.Event()
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()
    print(f"simulating {len(site.devices)} devices of {site.name} to {args.mqtt} (Ctrl-C to stop)", flush=True)
    try:
        stats = run_as_mqtt_publisher(site, args.mqtt, rate=args.rate, stop_event=stop, seed=args.seed)
    except KeyboardInterrupt:
        stop.set()
        return 130
    print(", ".join(f"{k} {v}" for k, v in stats.items()))
    return EXIT_OK


def cmd_record(args) -> int:
    import time

    from twinview.connectors.mqtt.telemetry import MqttConnector
    from twinview.connectors.replay.recording import Recorder
    from twinview.connectors.wire.topics import TopicMap
    from twinview.site import load_manifest

    if not args.out:
        return _record_into_store(args)
    site, _ = load_manifest(args.site)
    with Recorder(args.out) as recorder:
        connector = MqttConnector(args.mqtt, TopicMap(site), tap=recorder.record)
        connector.start(lambda event: None)
        print(f"recording {site.name} from {args.mqtt} to {args.out} for {args.seconds:g} s", flush=True)
        try:
            time.sleep(args.seconds)
        except KeyboardInterrupt:
            pass
        connector.stop()
        print(f"recorded {recorder.count} messages")
    return EXIT_OK


def _record_into_store(args) -> int:
    """twinview record SITE --mqtt URL [--store PATH]: the runtime, recorded into the history store."""
    import time

    from twinview.cli.memory import record_runtime

    loaded = _open(Path(args.site), quiet=True)
    runtime = _live(loaded, args)
    recorder = record_runtime(runtime, args)
    if recorder is None:
        runtime.stop()
        return EXIT_USAGE
    print(f"recording {loaded.site.name} from {args.mqtt} into {recorder.store} "
          f"{'for ' + format(args.seconds, 'g') + ' s' if args.seconds else 'until stopped'} (Ctrl-C stops)", flush=True)
    end = time.monotonic() + args.seconds if args.seconds else float("inf")
    try:
        runtime.start()
        while time.monotonic() < end:
            runtime.step()
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
        recorder.store.close()
    print(f"recorded {recorder.recorded:,} samples" + (f"; {recorder.errors} write errors: {recorder.last_error}" if recorder.errors else ""))
    return EXIT_OK


def cmd_command(args) -> int:
    from twinview.cli.command import run_command_cli

    return run_command_cli(
        args.site, args.device, args.command, args.args, args.mqtt,
        user=args.user, token=args.token, confirm=args.yes,
        users_path=args.users, audit_path=args.audit,
    )  # fmt: skip


def cmd_broker_acl(args) -> int:
    from twinview.cli.broker_acl import run_broker_acl

    return run_broker_acl(args.site, user=args.user, out=args.out, dynsec=args.dynsec, fleet_user=args.fleet_user)


def cmd_audit(args) -> int:
    from twinview.twin.audit import default_audit_path, format_rows, read_audit

    if args.file:
        path = Path(args.file)
    else:
        from twinview.site import load_manifest

        site, _ = load_manifest(args.site)
        path = default_audit_path(site.name)
    if not path.exists():
        print(f"no audit log at {path}", file=sys.stderr)
        return EXIT_USAGE
    errors: list[str] = []
    rows = read_audit(path, device=args.device, user=args.user, since=args.since, command_id=args.id,
                      state=args.state, limit=args.limit, errors=errors)  # fmt: skip
    sys.stdout.write(format_rows(rows, as_json=args.json))
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)
    return EXIT_OK


def cmd_alarms(args) -> int:
    from twinview.cli.alarms import run_alarms_cli

    return run_alarms_cli(args)


def cmd_users(args) -> int:
    import getpass

    from twinview.security import auth

    path = args.file
    if args.action == "list":
        users = auth.load_users(path)
        for user in users.values():
            print(f"{user.name}\t{user.role}")
        return EXIT_OK
    if not args.name:
        print("error: a user name is required", file=sys.stderr)
        return EXIT_USAGE

    def read_password() -> str:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\n")
        if os.environ.get("TWINVIEW_PASSWORD") is not None:  # as `twinview command` reads it
            return os.environ["TWINVIEW_PASSWORD"]
        first = getpass.getpass(f"password for {args.name}: ")
        if first != getpass.getpass("again: "):
            raise SystemExit("error: passwords differ")
        return first

    try:
        if args.action == "add":
            password = read_password() if not args.no_password else None
            auth.add_user(args.name, args.role, password, path)
            print(f"added {args.name} ({args.role}) to {path or auth.default_users_path()}")
        elif args.action == "passwd":
            auth.set_password(args.name, read_password(), path)
        elif args.action == "role":
            auth.set_role(args.name, args.role, path)
        elif args.action == "remove":
            auth.remove_user(args.name, path)
        elif args.action == "token":
            print(auth.issue_token(args.name, path, label=args.label or ""))
    except (ValueError, KeyError, auth.AuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_state(args) -> int:
    from twinview.cli.state import cmd_state as run

    return run(args, lambda path, quiet=False: _open(Path(path), quiet=quiet))


def cmd_bench(args) -> int:
    from twinview.bench import run_bench

    return run_bench(args)


def _add_web_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to serve the web view on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port for the web view (default 8765)")
    p.add_argument("--users", metavar="TOML", help="users file whose API tokens may actuate from the web")
    p.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                   help="another origin allowed to connect (e.g. where an export-xr bundle is hosted)")
    p.add_argument("--allow-host", action="append", metavar="NAME",
                   help="another host name the server answers to (e.g. a DNS alias); others are refused. "
                        "'*' allows any (only behind a proxy that checks)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS and WSS (headsets need it): with --tls-cert/--tls-key, or a certificate "
                        "from a local CA made once for this machine's names (trust it via /trust.html)")
    p.add_argument("--tls-cert", metavar="PEM", help="server certificate (chain) for --tls")
    p.add_argument("--tls-key", metavar="PEM", help="its private key")
    p.add_argument("--new-ca", action="store_true", help="with --tls: make a new local CA (headsets must trust it again)")
    p.add_argument("--qr", action=argparse.BooleanOptionalAction, default=None,
                   help="print the address as a QR code (default: when the output is a terminal)")


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt", metavar="URL", help="telemetry from an MQTT broker: mqtt://host:port or mqtts://...")
    p.add_argument("--replay", metavar="FILE", help="telemetry from a recording (JSONL)")
    p.add_argument("--replay-speed", type=float, default=1.0, help="replay speed factor (default 1)")
    p.add_argument("--ws-ingest", metavar="HOST:PORT", help="also accept JSON samples pushed over a websocket")
    p.add_argument("--no-sim", action="store_true", help="do not start the embedded simulator")
    p.add_argument("--ca", help="CA certificate file for mqtts://")
    p.add_argument("--cert", help="client certificate file for mqtts://")
    p.add_argument("--key", help="client key file for mqtts://")
    p.add_argument("--mqtt-v311", action="store_true", help="use MQTT 3.1.1 instead of MQTT 5")
    p.add_argument("--audit", metavar="JSONL", help="command audit log (default: per site under ~/.local/state/twinview)")
    p.add_argument("--store", metavar="PATH", help="history store: a folder or postgresql://... (default: per site)")
    p.add_argument("--no-record", action="store_true", help="do not record into the history store")
    p.add_argument("--alarm-store", metavar="JSONL",
                   help="alarm state and history journal (default: per site under ~/.local/state/twinview)")
    p.add_argument("--alarm-webhook", action="append", metavar="SEVERITY=URL",
                   help="POST changes of alarms of this severity to URL (repeat for more severities)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinview", description="Open 3D digital-twin viewer.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="how log lines look (stderr)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="open the bundled demo plant (live, simulated)")
    p.add_argument("--screenshot", metavar="PNG", help="where to write the screenshot when there is no display")
    p.add_argument("--wait", type=float, default=3.0, help=argparse.SUPPRESS)
    _add_source_options(p)
    _add_web_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("open", help="open a site folder in the desktop viewer")
    p.add_argument("site")
    p.add_argument("--screenshot", metavar="PNG", help="where to write the screenshot when there is no display")
    p.add_argument("--wait", type=float, default=3.0, help=argparse.SUPPRESS)
    _add_source_options(p)
    _add_web_options(p)
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("serve", help="serve the live site as a web page (desktop browsers and WebXR headsets)")
    p.add_argument("site")
    _add_source_options(p)
    _add_web_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export-xr", help="write a static web bundle of the site that connects to a live bridge")
    p.add_argument("site")
    p.add_argument("out")
    p.set_defaults(func=cmd_export_xr)

    p = sub.add_parser("render", help="render a site to a PNG without a window")
    p.add_argument("site")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--size", type=parse_size, default=(1280, 720), metavar="WxH")
    p.add_argument("--select", metavar="DEVICE", help="highlight this device")
    p.add_argument("--focus", action="store_true", help="with --select: frame the selected device")
    p.add_argument("--quality", choices=("fast", "high"), default="high")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="receive live data this long before rendering")
    p.add_argument("--at", metavar="TIME", help="the scene as it was then, from the history store (ISO time, epoch, or -10m)")
    p.add_argument("--quiet", action="store_true")
    _add_source_options(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("check", help="validate a site: manifest, model and binding")
    p.add_argument("site")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("generate-site", help="write a large synthetic site for testing and benchmarks")
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate_site)

    p = sub.add_parser("sim", help="run the plant simulator as an external MQTT device fleet")
    p.add_argument("site")
    p.add_argument("--mqtt", required=True, metavar="URL")
    p.add_argument("--rate", type=float, default=1.0, help="update rate factor (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: run until Ctrl-C)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("record", help="record a site's MQTT telemetry into its history store (or a JSONL file)")
    p.add_argument("site")
    p.add_argument("--mqtt", required=True, metavar="URL")
    p.add_argument("--out", metavar="JSONL", help="a portable recording for --replay instead of the history store")
    p.add_argument("--store", metavar="PATH", help="history store: a folder or postgresql://... (default: per site)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("command", help="send a command to a device and follow it until confirmed")
    p.add_argument("site")
    p.add_argument("device")
    p.add_argument("command")
    p.add_argument("args", nargs="*", metavar="ARG=VALUE")
    p.add_argument("--mqtt", required=True, metavar="URL")
    p.add_argument("--user", help="user name (password from $TWINVIEW_PASSWORD, else asked for on a terminal)")
    p.add_argument("--token", help="API token (default $TWINVIEW_TOKEN)")
    p.add_argument("--yes", "--confirm", dest="yes", action="store_true", help="confirm commands that need confirmation")
    p.add_argument("--users", metavar="TOML", help="users file (default $TWINVIEW_USERS or ~/.config/twinview/users.toml)")
    p.add_argument("--audit", metavar="JSONL", help="audit log (default: per site under ~/.local/state/twinview)")
    p.epilog = ("exit codes: 0 confirmed, 10 refused, 11 rejected, 12 timed out, 13 expired or failed, "
                "14 authentication failed, 15 unverified (already as wanted; nothing shows the device received it)")
    p.set_defaults(func=cmd_command)

    p = sub.add_parser("broker-acl", help="write the mosquitto ACL that lets only twinview publish commands")
    p.add_argument("site")
    p.add_argument("--user", default="twinview", help="twinview's broker user for commands (default twinview)")
    p.add_argument("--out", metavar="FILE", help="write the acl_file here (default: standard output)")
    p.add_argument("--dynsec", metavar="FILE", help="also write a mosquitto dynamic-security JSON with the same rules")
    p.add_argument("--fleet-user", metavar="NAME", help="also a user that plays every device (twinview sim, a gateway)")
    p.set_defaults(func=cmd_broker_acl)

    p = sub.add_parser("audit", help="print or filter the command audit log")
    p.add_argument("site", nargs="?", help="site folder (to find its default audit log)")
    p.add_argument("--file", metavar="JSONL", help="audit log to read instead of the site's default")
    p.add_argument("--device")
    p.add_argument("--user")
    p.add_argument("--since", help="e.g. 2h, 30m, 2026-11-21T10:00")
    p.add_argument("--id", help="command id (or its first characters)")
    p.add_argument("--state", help="only this state (e.g. refused)")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    from twinview.history.cli import add_history_parser  # twinview history: recorded samples (self-contained)

    add_history_parser(sub)
    p = sub.add_parser("alarms", help="list, acknowledge, shelve and report alarms",
                       usage="twinview alarms [list|ack|shelve|unshelve|out-of-service|in-service|report] SITE [ALARM_ID] [options]")
    p.add_argument("words", nargs="+", metavar="[ACTION] SITE [ALARM_ID]",
                   help="list (default), ack, shelve, unshelve, out-of-service, in-service or report; the site folder; "
                        "the alarm id (DEVICE/NAME)")
    p.add_argument("--store", metavar="JSONL", help="alarm journal (default: per site under ~/.local/state/twinview)")
    p.add_argument("--active", action="store_true", help="only alarms whose condition is active")
    p.add_argument("--all", action="store_true", help="every configured alarm, normal ones too")
    p.add_argument("--json", action="store_true", help="one JSON object per alarm (report: one object)")
    p.add_argument("--user", help="user name (password from $TWINVIEW_PASSWORD)")
    p.add_argument("--token", help="API token (default $TWINVIEW_TOKEN)")
    p.add_argument("--users", metavar="TOML", help="users file (default $TWINVIEW_USERS or ~/.config/twinview/users.toml)")
    p.add_argument("--audit", metavar="JSONL", help="audit log (default: per site under ~/.local/state/twinview)")
    p.add_argument("--for", dest="duration", metavar="DURATION", help="shelve: for how long, e.g. 30m, 2h")
    p.add_argument("--reason", help="shelve: why (required); out-of-service: why")
    p.add_argument("--comment", help="ack: a comment for the audit log")
    p.add_argument("--since", help="report: the period, e.g. 24h, 7d, 2026-11-01 (default 7d)")
    p.epilog = "exit codes: 0 done, 2 bad usage, 3 site problem, 10 refused, 14 authentication failed"
    p.set_defaults(func=cmd_alarms)

    p = sub.add_parser("users", help="manage the local users file (roles, passwords, API tokens)")
    p.add_argument("action", choices=("list", "add", "passwd", "role", "remove", "token"))
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=("viewer", "operator", "admin"), default="viewer")
    p.add_argument("--file", metavar="TOML", help="users file (default $TWINVIEW_USERS or ~/.config/twinview/users.toml)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin (else $TWINVIEW_PASSWORD, else asked)")
    p.add_argument("--no-password", action="store_true", help="add a user that signs in with tokens only")
    p.add_argument("--label", help="a label for a new token")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("state", help="the twin after a while: every point's value, quality, time and flags")
    p.add_argument("site")
    p.add_argument("--sim", action="store_true", help="telemetry from the embedded simulator")
    p.add_argument("--wait", type=float, default=3.0, metavar="SECONDS", help="receive this long before printing (default 3)")
    p.add_argument("--device", help="only this device")
    p.add_argument("--json", action="store_true", help="one JSON object per point")
    _add_source_options(p)
    p.epilog = "exit codes: 0 ok, 2 bad usage, 3 site problem, 4 a source could not be reached"
    p.set_defaults(func=cmd_state)

    from twinview.cli.detect import add_parser as add_detect_parser

    add_detect_parser(sub)

    p = sub.add_parser("bench", help="measure load, frame, memory and ingest figures; prints a table")
    p.add_argument("--devices", default="1000,20000", help="comma-separated site sizes (default 1000,20000)")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=parse_size, default=(640, 360), metavar="WxH")
    p.add_argument("--only", default="", help="comma-separated sections: scene, ingest, pipeline, alarms, web, faults, history, detect")
    p.set_defaults(func=cmd_bench)
    return parser


def _runtime_dir_ok(path: str | None) -> bool:
    """XDG's rules for a runtime dir: an existing directory of ours that nobody else can enter."""
    if not path or not os.path.isabs(path):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def ensure_runtime_dir() -> None:
    """Give graphics libraries a valid XDG_RUNTIME_DIR before wgpu loads.

    Without one (containers, su, cron, CI), the Vulkan drivers print "error: XDG_RUNTIME_DIR is
    invalid or not set" on every successful render: a user must never see a spurious error.
    """
    if not hasattr(os, "getuid") or _runtime_dir_ok(os.environ.get("XDG_RUNTIME_DIR")):
        return
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"twinview-runtime-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return
    if not _runtime_dir_ok(path):  # someone else's, or loosened: make a fresh private one
        try:
            path = tempfile.mkdtemp(prefix="twinview-runtime-")
        except OSError:
            return
    os.environ["XDG_RUNTIME_DIR"] = path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYGFX_DEFAULT_PPAA", "default")
    ensure_runtime_dir()
    parser = build_parser()
    args = parser.parse_args(argv)
    from twinview.cli.logs import configure

    configure(args.verbose, args.log_format)
    if getattr(args, "alarm_webhook", None):
        from twinview.connectors.webhook.alarms import parse_webhooks

        try:
            parse_webhooks(args.alarm_webhook)
        except ValueError as exc:
            print(f"error: --alarm-webhook: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in DESKTOP_MODULES:
            raise
        print(needs_desktop(args.command), file=sys.stderr)
        return EXIT_USAGE
    except SiteError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_SITE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
