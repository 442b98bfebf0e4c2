"""HTTPS for headsets: the local CA and server certificate, a given certificate, and real
Chromium over HTTPS and WSS trusting the CA through its NSS database.

Why an NSS database and not --ignore-certificate-errors-spki-list: the SPKI list makes
Chromium ignore *every* certificate error for that key (wrong name, missing
serverAuth, broken chain, name constraints), so it would pass with a certificate no
headset accepts. A CA added to $HOME/.pki/nssdb with certutil is verified the way a
headset that trusts the CA verifies it, and works headless here (tested below, with a
second Chromium that lacks the CA and is refused).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, BrowserError, missing  # noqa: E402
from rig import command_site, wait_for  # noqa: E402

from twinview.security import tls  # noqa: E402


def test_local_ca_and_server_certificate_are_made_once_and_kept_private(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = tmp_path / "tls"
    names = ["localhost", "plant-pc", "127.0.0.1", "::1", "192.168.1.20"]
    first = tls.ensure_server_cert(names, folder)
    assert first.made and first.ca_made
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / tls.CA_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / tls.SERVER_KEY_FILE).stat().st_mode) == 0o600
    assert set(first.dns) == {"localhost", "plant-pc"} and set(first.ips) == {"127.0.0.1", "::1", "192.168.1.20"}

    # openssl (not our code) verifies the chain for serverAuth and each name.
    for name in ("localhost", "plant-pc"):
        out = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-verify_hostname", name,
                              "-CAfile", str(first.ca), str(first.cert)], capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 0 and ": OK" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(["openssl", "verify", "-verify_ip", "192.168.1.20", "-CAfile", str(first.ca), str(first.cert)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    leaf = x509.load_pem_x509_certificates(first.cert.read_bytes())[0]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=398)  # Apple's and browsers' limit
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    again = tls.ensure_server_cert(names, folder)
    assert not again.made and again.fingerprint == first.fingerprint  # made once
    wider = tls.ensure_server_cert(names + ["plant-pc.local"], folder)
    assert wider.made and not wider.ca_made and wider.ca_fingerprint == first.ca_fingerprint  # same CA: no new trust

    # The CA's name constraints: it cannot vouch for a public name, even if its key were stolen.
    with pytest.raises(tls.TlsError, match="may not certify www.example.com.*--new-ca"):
        tls.ensure_server_cert(names + ["www.example.com"], folder)
    public = tmp_path / "public.pem"
    ca_key = (folder / tls.CA_KEY_FILE).read_bytes()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    forged, _ = tls._make_server(x509.load_pem_x509_certificate(first.ca.read_bytes()), load_pem_private_key(ca_key, None),
                                 ["www.example.com"], [])  # fmt: skip
    public.write_bytes(tls._pem_cert(forged))
    out = subprocess.run(["openssl", "verify", "-CAfile", str(first.ca), str(public)], capture_output=True, text=True)
    assert out.returncode != 0 and "permitted subtree violation" in out.stdout + out.stderr

    fresh = tls.ensure_server_cert(names, folder, new_ca=True)
    assert fresh.ca_made and fresh.ca_fingerprint != first.ca_fingerprint


def test_a_given_certificate_is_checked(tmp_path):
    a = tls.ensure_server_cert(["localhost"], tmp_path / "a")
    b = tls.ensure_server_cert(["localhost"], tmp_path / "b")
    assert tls.given_cert(a.cert, a.key).fingerprint == a.fingerprint
    with pytest.raises(tls.TlsError, match="does not belong"):
        tls.given_cert(a.cert, b.key)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(tls.TlsError, match="not a PEM or DER certificate"):
        tls.given_cert(junk, a.key)
    with pytest.raises(tls.TlsError, match="cannot read"):
        tls.given_cert(tmp_path / "missing.pem", a.key)


class DeviceSub:
    """A real mosquitto_sub standing in for the devices: subscribed to their command topics."""

    def __init__(self, broker, topic: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1",
             "-t", topic, "-v", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=lambda: self.lines.extend(line.rstrip("\n") for line in self.proc.stdout), daemon=True).start()
        if not wait_for(lambda: any("SUBACK" in line for line in list(self.lines)), 10):
            self.close()
            raise AssertionError(f"mosquitto_sub did not subscribe: {self.lines}")

    def messages(self) -> list[str]:
        return [line for line in list(self.lines) if line.startswith("grid/")]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


def nss_home(tmp_path: Path, ca: Path) -> Path:
    """A HOME whose Chromium trusts exactly this CA (certutil from libnss3-tools)."""
    home = tmp_path / "home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "twinview-test-ca", "-i", str(ca)],
                   check=True, capture_output=True)  # fmt: skip
    return home


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.skipif(missing() is not None, reason=str(missing()))
@pytest.mark.skipif(shutil.which("certutil") is None, reason="certutil not installed (apt libnss3-tools)")
def test_chromium_signs_in_and_commands_over_https_and_wss_trusting_the_local_ca(tmp_path, broker, monkeypatch):
    from twinview.connectors.mqtt.commands import MqttCommandTransport
    from twinview.security.auth import add_user, issue_token
    from twinview.site import open_site
    from twinview.twin.audit import read_audit
    from twinview.twin.runtime import Runtime
    from twinview.web.actuation import token_authenticator
    from twinview.web.serve import start_server

    loaded = open_site(command_site(tmp_path / "site"))
    users = tmp_path / "users.toml"
    add_user("olga", "operator", path=users)
    token = issue_token("olga", path=users)
    audit = tmp_path / "audit.jsonl"
    # As a headset on the network sees it: the machine's own network address, not localhost
    # (where browsers would give a secure context even over plain http).
    lan = [a for a in tls.local_addresses() if ":" not in a]
    host = lan[0] if lan else "127.0.0.1"
    cert = tls.ensure_server_cert(tls.machine_names(host), tmp_path / "tls")

    cleanup = []
    try:
        devices = DeviceSub(broker, "grid/+/cmd/#")
        cleanup.append(devices.close)
        transport = MqttCommandTransport(broker.url, loaded.site.topic_prefix).start()
        cleanup.append(transport.stop)
        assert transport.wait_ready(10)
        live = Runtime(loaded.site)
        live.enable_commands(transport, audit_path=audit)
        server = start_server(loaded, live, host=host, port=0, authenticate=token_authenticator(users), tls=cert)
        cleanup.append(server.stop)
        url = server.bridge.url_for(host)
        assert url.startswith("https://") and server.bridge.ws_url.startswith("wss://")

        # The CA the page offers is the one that signed the certificate (what a headset downloads).
        ctx = ssl.create_default_context(cafile=str(cert.ca))
        with urllib.request.urlopen(url + "twinview-ca.crt", context=ctx) as r:
            assert r.headers["Content-Type"] == "application/x-x509-ca-cert"
            assert r.read() == tls.ca_der(cert.ca)
        with urllib.request.urlopen(url + "trust.html", context=ctx) as r:
            page = r.read().decode()
            assert cert.ca_fingerprint in page and "Vision Pro" in page and "Quest" in page and "<script" not in page

        # Chromium reads the CAs it trusts from $HOME/.pki/nssdb; the driver and its Chromium inherit HOME.
        monkeypatch.setenv("HOME", str(nss_home(tmp_path, cert.ca)))
        browser = Browser(iwer=True)
        cleanup.append(browser.close)
        browser.goto(url)
        browser.wait("() => twinview.connected && location.protocol === 'https:' && isSecureContext")
        assert browser.eval("() => twinview.connection.url") == server.bridge.ws_url.replace(server.bridge.host, host)
        assert server.bridge.ws_url.startswith("wss://")

        browser.eval("() => twinview.login('tvt_not_a_token')")  # refused with the server's reason
        error = browser.wait("() => twinview.errors.find((e) => e.code === 'auth_failed')")
        assert error["message"] == "unknown or expired token" and browser.eval("() => twinview.role") is None
        browser.eval("(token) => twinview.login(token)", token)
        browser.wait("() => twinview.role === 'operator' && twinview.user === 'olga'")
        # The token is nowhere the page's scripts or the address bar can see it.
        seen = browser.eval("() => [document.cookie, location.href, JSON.stringify(sessionStorage), JSON.stringify(localStorage)]")
        assert all(token not in s for s in seen) and "twinview-session" not in seen[0], seen

        ref = browser.eval("() => twinview.sendCommand('B-1-1', 'start', {}, false)")
        assert ref
        result = browser.wait("() => twinview.results.length === 1 && twinview.results[0]")
        assert result["ok"] and result["device"] == "B-1-1" and result["command"] == "start", result
        assert wait_for(lambda: len(devices.messages()) == 1, 10), devices.lines[-5:]
        assert devices.messages()[0].startswith("grid/B-1-1/cmd/start ") and '"user":"olga"' in devices.messages()[0]
        assert [r["command"] for r in read_audit(audit, user="olga", state="requested")] == ["start"]
        signed = [r for r in read_audit(audit) if r.get("event") == "sign_in"]
        assert [(r["state"], r["user"], r["address"]) for r in signed] == [("sign_in_failed", "", host), ("signed_in", "olga", host)]

        # A reload keeps the session (the cookie) without the page holding the token.
        browser.goto(url)
        browser.wait("() => twinview.connected && twinview.user === 'olga'")
        # WebXR (Quest 3 emulated by IWER) starts from this https page.
        browser.wait("() => twinview.xr.supported.vr")
        browser.call("click", selector="#enter-vr")
        browser.wait("() => twinview.xr.presenting && twinview.frames > 2")
        browser.eval("() => twinview.exitXR()")

        # The same page in a Chromium that does not trust the CA is refused.
        monkeypatch.setenv("HOME", str(tmp_path / "stranger"))
        stranger = Browser()
        cleanup.append(stranger.close)
        with pytest.raises(BrowserError, match="ERR_CERT_AUTHORITY_INVALID"):
            stranger.goto(url)
    finally:
        for close in reversed(cleanup):
            close()


def test_serve_tls_from_the_command_line_then_sigterm_stops_it_cleanly(tmp_path):
    """`twinview serve --tls` as a service manager runs it: certificate made, address and QR code
    printed, HTTPS answered; SIGTERM stops it like Ctrl-C (exit 0, audit note, port closed)."""
    import signal
    import socket
    import time

    from twinview.cli.qr import qr_matrix
    from twinview.twin.audit import read_audit

    site = command_site(tmp_path / "site")
    audit = tmp_path / "audit.jsonl"
    env = {**os.environ, "TWINVIEW_TLS_DIR": str(tmp_path / "tls"), "TWINVIEW_AUDIT": str(audit),
           "TWINVIEW_USERS": str(tmp_path / "users.toml"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinview.cli", "serve", str(site), "--tls", "--port", "0", "--qr"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stdout), daemon=True).start()
    try:
        assert wait_for(lambda: any(line.startswith("open https://") for line in list(lines)), 60), lines
        url = next(line for line in lines if line.startswith("open https://"))[len("open ") :]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert any("made a local certificate authority" in line for line in lines)
        ca = tmp_path / "tls" / tls.CA_FILE
        assert stat.S_IMODE((tmp_path / "tls" / tls.CA_KEY_FILE).stat().st_mode) == 0o600
        assert wait_for(lambda: any(line.startswith("headsets trust this server once") for line in list(lines)), 5)
        # The QR code printed is the URL's: read the half blocks back into modules.
        want = qr_matrix(url)
        assert wait_for(lambda: sum("\u2588" in line or "\u2580" in line for line in list(lines)) >= len(want) // 2 - 4, 5)
        blocks = [line.replace("\x1b[30;47m", "").replace("\x1b[0m", "") for line in lines if line.startswith("\x1b[30;47m")]
        top = {" ": 0, "\u2580": 1, "\u2584": 0, "\u2588": 1}
        bottom = {" ": 0, "\u2580": 0, "\u2584": 1, "\u2588": 1}
        got = [row for line in blocks for row in ([top[c] for c in line], [bottom[c] for c in line])]
        assert got[: len(want)] == want

        ctx = ssl.create_default_context(cafile=str(ca))
        local = f"https://localhost:{port}/"
        with urllib.request.urlopen(local + "site.json", context=ctx) as r:
            assert r.status == 200 and r.headers["X-Content-Type-Options"] == "nosniff"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, lines[-20:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    time.sleep(0.2)
    assert wait_for(lambda: "stopped (SIGTERM)" in lines, 5), lines[-10:]
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert not any(line.startswith(("INFO", "DEBUG")) for line in lines), "\n".join(lines)  # quiet unless -v
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    notes = [(r["state"], r["reason"]) for r in read_audit(audit) if r.get("event") == "server"]
    assert notes[0][0] == "server_started" and notes[-1] == ("server_stopped", "SIGTERM: clean shutdown"), notes


def test_serve_refuses_bad_tls_options_with_one_line(tmp_path):
    site = command_site(tmp_path / "site")
    env = {**os.environ, "TWINVIEW_TLS_DIR": str(tmp_path / "tls"), "TWINVIEW_AUDIT": str(tmp_path / "a.jsonl")}
    other = tls.ensure_server_cert(["localhost"], tmp_path / "other")
    cases = [
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(other.key)], "error: cannot read certificate"),
        (["--tls-cert", str(other.cert)], "error: --tls-cert and --tls-key go together"),
    ]
    for extra, error in cases:
        proc = subprocess.run([sys.executable, "-m", "twinview.cli", "serve", str(site), "--port", "0", *extra],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(error), proc.stderr
    # The CA made for this machine cannot later vouch for a public name: one line says what to do.
    tls.ensure_server_cert(tls.machine_names(), tmp_path / "tls")
    proc = subprocess.run([sys.executable, "-m", "twinview.cli", "serve", str(site), "--port", "0", "--tls",
                           "--allow-host", "plant.example.com"], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "may not certify plant.example.com" in proc.stderr and "--new-ca" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_a_given_certificate_answers_to_its_names(tmp_path):
    """--tls-cert/--tls-key: the certificate's own names are served (and announced); others are not."""
    import signal
    import socket

    given = tls.ensure_server_cert(["twin.plant.test"], tmp_path / "their-ca")  # "their" CA and certificate
    site = command_site(tmp_path / "site")
    env = {**os.environ, "TWINVIEW_TLS_DIR": str(tmp_path / "unused"), "TWINVIEW_AUDIT": str(tmp_path / "a.jsonl"),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinview.cli", "serve", str(site), "--port", "0", "--no-qr",
         "--tls-cert", str(given.cert), "--tls-key", str(given.key)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stdout), daemon=True).start()
    try:
        assert wait_for(lambda: any(line.startswith("open https://") for line in list(lines)), 60), lines
        url = next(line for line in lines if line.startswith("open "))[len("open ") :]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert url == f"https://twin.plant.test:{port}/"
        assert not (tmp_path / "unused").exists()  # no local CA made when a certificate is given
        ctx = ssl.create_default_context(cafile=str(given.ca))

        def status(host: str) -> str:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="twin.plant.test") as s:
                    s.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                    return s.recv(4096).split(b"\r\n", 1)[0].decode()

        assert status(f"twin.plant.test:{port}") == "HTTP/1.1 200 OK"
        assert status(f"evil.example:{port}") == "HTTP/1.1 421 Misdirected Request"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_a_damaged_or_unwritable_tls_folder_is_one_clear_error(tmp_path):
    folder = tmp_path / "tls"
    tls.ensure_server_cert(["localhost"], folder)
    (folder / tls.SERVER_FILE).unlink()
    (folder / tls.CA_KEY_FILE).write_text("garbage")
    with pytest.raises(tls.TlsError, match="damaged.*--new-ca"):
        tls.ensure_server_cert(["localhost"], folder)
    assert tls.ensure_server_cert(["localhost"], folder, new_ca=True).ca_made  # the way out it names
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(tls.TlsError, match="cannot use"):
        tls.ensure_server_cert(["localhost"], blocked / "tls")
