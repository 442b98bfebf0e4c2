"""The page's defences over real sockets: allowed hosts (DNS rebinding), security headers, HEAD,
sign-in sessions in an HttpOnly cookie, and sign-ins limited per address and audited."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from twinview.security.auth import add_user, issue_token
from twinview.security.ratelimit import SignInLimiter
from twinview.twin.audit import AuditLog, read_audit
from twinview.web.actuation import token_authenticator
from twinview.web.bridge import WebBridge

INDEX = b'<!doctype html><html><head><script type="importmap">{"imports": {}}</script></head><body>hi</body></html>'
FILES = {"index.html": INDEX, "site.json": b'{"name": "x"}'}


def raw(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send bytes, read until the server closes: (status line, headers, body) exactly as sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return lines[0], headers, body


def request(port: int, method: str, path: str, host: str | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["Host"] = host
    conn.request(method, path, headers=all_headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r, body


def ws_messages(url: str, until: str, **options) -> list[dict]:
    out = []
    with connect(url, open_timeout=5, **options) as ws:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
            out.append(msg)
            if msg["type"] == until:
                return out
    return out


def test_other_host_names_are_refused_on_http_and_websocket():
    """DNS rebinding: a page at evil.example:PORT whose name resolves to 127.0.0.1 gets nothing."""
    with WebBridge(["a"], FILES, allowed_hosts=["127.0.0.1", "localhost", "plant.example"]) as bridge:
        port = bridge.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"PLANT.example.:{port}", "plant.example"):
            r, body = request(port, "GET", "/", host=host)
            assert r.status == 200 and body == INDEX, host
        for host in (f"evil.example:{port}", f"localhost.evil.example:{port}", "127.0.0.2", ""):
            r, body = request(port, "GET", "/site.json", host=host)
            assert r.status == 421 and b'"x"' not in body, (host, r.status)
        # The attack of issue 13: Origin and Host agree (the page really is evil.example:PORT), so the
        # Origin check alone let it through and the page got 101 and the live state.
        evil = f"evil.example:{port}"
        with pytest.raises(InvalidStatus) as refused:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)  # evil.example "resolved" to us
            connect(f"ws://{evil}/ws", sock=sock, open_timeout=5, origin=f"http://{evil}")
        assert refused.value.response.status_code == 421
        # Two Host headers (one allowed, one not) are refused, not answered with an error page.
        status, _, _ = raw(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: {evil}\r\n\r\n".encode())
        assert status.startswith("HTTP/1.1 421")
        assert bridge.stats.host_refused == 6
        # Likewise two Origin headers on a websocket handshake: refused, not a server error.
        upgrade = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
                   f"Origin: http://{evil}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        assert raw(port, upgrade.encode())[0].startswith("HTTP/1.1 403")
        # The served names still work for the websocket.
        assert ws_messages(bridge.ws_url, "snapshot", origin=f"http://127.0.0.1:{port}")[0]["type"] == "hello"


def test_security_headers_head_and_methods():
    with WebBridge(["a"], FILES) as bridge:
        r, body = request(bridge.port, "GET", "/")
        csp = r.headers["Content-Security-Policy"]
        script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "'sha256-" in script_src
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers.get_all("X-Content-Type-Options") == ["nosniff"]  # once, not twice
        # Error answers carry them too.
        r404, _ = request(bridge.port, "GET", "/nothing")
        assert r404.status == 404 and r404.headers["X-Content-Type-Options"] == "nosniff"

        # HEAD: the headers of GET and not one byte of body (read from the socket as sent).
        status, headers, body = raw(bridge.port, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status.startswith("HTTP/1.1 200") and headers["content-length"] == str(len(INDEX))
        assert "content-security-policy" in headers and body == b""
        status, _, body = raw(bridge.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status.startswith("HTTP/1.1 200") and body == INDEX

        for method in ("PUT", "POST", "DELETE", "OPTIONS"):
            r, _ = request(bridge.port, method, "/")
            assert r.status == 405 and r.headers["Allow"] == "GET, HEAD", method


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.toml"
    add_user("olga", "operator", path=path)
    return path, issue_token("olga", path=path)


def test_sign_in_gives_an_httponly_cookie_that_the_websocket_carries(users, tmp_path):
    path, token = users
    audit = AuditLog(tmp_path / "audit.jsonl")
    with WebBridge(["a"], FILES, authenticate=token_authenticator(path), on_security_event=audit.write) as bridge:
        port, origin = bridge.port, f"http://127.0.0.1:{bridge.port}"
        r, body = request(port, "POST", "/session", headers={"Authorization": f"Bearer {token}", "Origin": origin})
        assert r.status == 200 and json.loads(body) == {"ok": True, "user": "olga", "role": "operator"}
        cookie = r.headers["Set-Cookie"]
        attrs = [a.strip() for a in cookie.split(";")]
        assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs) and "Secure" not in attrs  # plain HTTP here
        assert token not in cookie and r.headers["Cache-Control"] == "no-store"
        pair = attrs[0]

        msgs = ws_messages(bridge.ws_url, "auth_ok", origin=origin, additional_headers={"Cookie": pair})
        assert msgs[-1] == {"type": "auth_ok", "user": "olga", "role": "operator", "ref": None}
        assert [getattr(p, "name", None) for p in bridge.principals().values()] in ([], [None], ["olga"])

        # Without the cookie the websocket is read-only.
        assert all(m["type"] != "auth_ok" for m in ws_messages(bridge.ws_url, "snapshot", origin=origin))
        # A page elsewhere cannot sign this browser in (login CSRF).
        r, _ = request(port, "POST", "/session", headers={"Authorization": f"Bearer {token}", "Origin": "http://evil.example"})
        assert r.status == 403
        # Sign out: the cookie is cleared and the session is gone on the server.
        r, _ = request(port, "DELETE", "/session", headers={"Cookie": pair, "Origin": origin})
        assert r.status == 200 and "Max-Age=0" in r.headers["Set-Cookie"]
        msgs = ws_messages(bridge.ws_url, "error", origin=origin, additional_headers={"Cookie": pair})
        assert msgs[-1]["code"] == "session_ended"
    records = read_audit(tmp_path / "audit.jsonl")
    assert [(r["event"], r["state"], r["user"], r["address"]) for r in records] == [("sign_in", "signed_in", "olga", "127.0.0.1")]
    assert token not in (tmp_path / "audit.jsonl").read_text()


def test_sign_ins_are_limited_per_address_and_audited(users, tmp_path):
    path, token = users
    now = [1000.0]
    limiter = SignInLimiter(limit=5, window=60, clock=lambda: now[0])
    audit = AuditLog(tmp_path / "audit.jsonl")
    with WebBridge(["a"], FILES, authenticate=token_authenticator(path), on_security_event=audit.write,
                   limiter=limiter) as bridge:  # fmt: skip
        def sign_in(tok: str):
            r, body = request(bridge.port, "POST", "/session", headers={"Authorization": f"Bearer {tok}"})
            return r, json.loads(body)

        for i in range(5):
            r, body = sign_in(f"tvt_guess{i}")
            assert r.status == 401 and body["code"] == "auth_failed"
        # Locked out: even the right token is not checked, with a clear message and Retry-After.
        r, body = sign_in(token)
        assert r.status == 429 and "too many failed sign-ins" in body["error"] and int(r.headers["Retry-After"]) == 60
        # The websocket's first-message sign-in shares the limit.
        with connect(bridge.ws_url, open_timeout=5) as ws:
            ws.send(json.dumps({"type": "auth", "token": token}))
            while (msg := json.loads(ws.recv(timeout=5)))["type"] != "error":
                pass
            assert msg["code"] == "rate_limited" and "try again in" in msg["message"]
        now[0] += 59
        assert sign_in(token)[0].status == 429
        now[0] += 1.5  # a minute after the first failure
        r, body = sign_in(token)
        assert r.status == 200 and body["user"] == "olga"
        assert bridge.stats.auth_failed == 5 and bridge.stats.auth_limited == 3
    records = read_audit(tmp_path / "audit.jsonl")
    states = [r["state"] for r in records]
    assert states == ["sign_in_failed"] * 5 + ["sign_in_locked", "signed_in"], states
    assert records[0]["reason"] == "from 127.0.0.1 (web): unknown or expired token"
    assert all(r["address"] == "127.0.0.1" and r["event"] == "sign_in" for r in records)
    assert "tvt_guess" not in (tmp_path / "audit.jsonl").read_text()  # never a token, not even a wrong one


def test_limiter_forgets_old_failures_and_bounds_memory():
    now = [0.0]
    limiter = SignInLimiter(limit=3, window=10, clock=lambda: now[0], max_addresses=2)
    assert [limiter.failed("a") for _ in range(3)] == [False, False, True]
    assert limiter.check("a") == pytest.approx(10) and limiter.check("b") == 0
    now[0] = 5
    limiter.failed("b")
    limiter.failed("c")  # a third address pushes out the least recently seen ("a")
    assert limiter.check("a") == 0 and limiter.refused == 1
    limiter.succeeded("b")
    assert limiter.retry_after("b") == 0


def test_default_allowed_hosts_follow_the_bound_address():
    import socket as _socket

    from twinview.security.tls import local_addresses
    from twinview.web.serve import default_allowed_hosts

    assert set(default_allowed_hosts("127.0.0.1")) == {"localhost", "127.0.0.1", "::1"}
    everywhere = default_allowed_hosts("0.0.0.0")
    assert {"localhost", "127.0.0.1", _socket.gethostname().lower()} <= set(everywhere)
    assert set(local_addresses()) <= set(everywhere) and "0.0.0.0" not in everywhere
    # A LAN address of this machine is served, a rebinding name is not.
    with WebBridge(["a"], FILES, host="0.0.0.0", allowed_hosts=everywhere) as bridge:
        for address in local_addresses()[:1]:
            r, _ = request(bridge.port, "GET", "/", host=f"{address}:{bridge.port}" if ":" not in address else f"[{address}]:{bridge.port}")
            assert r.status == 200
        assert request(bridge.port, "GET", "/", host=f"evil.example:{bridge.port}")[0].status == 421


def test_allowed_host_names_are_compared_as_hosts():
    from twinview.web.guard import AllowedHosts

    hosts = AllowedHosts(["Plant.Example", "*.twin.test", "192.168.1.20", "::1"])
    assert all(hosts.allows(h) for h in ["plant.example", "plant.example.:443", "a.twin.test:8765", "192.168.1.20:1", "[::1]:8765"])
    assert not any(hosts.allows(h) for h in ["twin.test", "a.b.twin.test", "plant.example.evil", "192.168.1.2", "", None,
                                             "[::2]:8765", "plant.example@evil.test"])  # fmt: skip
    assert AllowedHosts(["*"]).allows("anything:1")


def test_tokens_stay_out_of_logs_even_at_debug_level(users, caplog):
    import logging

    path, token = users
    caplog.set_level(logging.DEBUG)  # the whole application at DEBUG
    with WebBridge(["a"], FILES, authenticate=token_authenticator(path)) as bridge:
        with connect(bridge.ws_url, open_timeout=5) as ws:
            ws.send(json.dumps({"type": "auth", "token": token}))
            ws.send(json.dumps({"type": "auth", "token": token + "x"}))  # refused: not first
            while json.loads(ws.recv(timeout=5))["type"] != "error":
                pass
        request(bridge.port, "POST", "/session", headers={"Authorization": f"Bearer {token}x"})
    # (the test's own client logs its frames under websockets.client: that is not the server)
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client"))
    assert "sign in failed" in text  # logging did happen
    assert token not in text and token[:20] not in text
