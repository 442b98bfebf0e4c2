"""The page's defences at the door: allowed Host names, security headers, sign-in sessions.

- Host: a page served under another name (DNS rebinding: evil.example resolving
  to 127.0.0.1) must not reach the twin. Every HTTP request and websocket
  handshake must name one of the served names or addresses in its Host header.
- Headers: a content security policy with no inline script (the import map is
  allowed by its hash only), no framing, no MIME sniffing, no referrer.
- Sessions: the page signs in by sending its token once, in an Authorization
  header, to POST /session; it gets an HttpOnly, SameSite=Strict cookie that
  holds a random session id (never the token), which the websocket handshake
  carries. Tokens are never in a URL, a log or page storage.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import OrderedDict
from http.cookies import CookieError, SimpleCookie
from typing import Iterable

SESSION_PATH = "/session"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 10_000
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def one(headers, name: str) -> str | None:
    """A header that must appear once: its value, or None when it is missing or repeated."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else None


def normalize_host(name: str) -> str:
    """A host name or address as compared: lower case, no brackets, no trailing dot, canonical IP form."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def host_of(header: str) -> str:
    """The host part of a Host header value ("name:port", "[::1]:8765", "name")."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        return normalize_host(header[: end + 1]) if end > 0 else ""
    if header.count(":") > 1:  # a bare IPv6 address (not valid in Host, but do not crash)
        return normalize_host(header)
    return normalize_host(header.partition(":")[0])


class AllowedHosts:
    """The names and addresses the server answers to; '*' allows any (behind a proxy that checks).
    '*.example.com' (as in a certificate) allows one label in its place: a.example.com."""

    def __init__(self, names: Iterable[str]):
        self.names = {normalize_host(n) for n in names if n and n.strip()}
        self.any = "*" in self.names
        self.suffixes = tuple(n[1:] for n in self.names if n.startswith("*.") and len(n) > 2)

    def allows(self, host_header: str | None) -> bool:
        if self.any:
            return True
        if not host_header:
            return False
        host = host_of(host_header)
        if host in self.names:
            return True
        return any(host.endswith(s) and host[: -len(s)] and "." not in host[: -len(s)] for s in self.suffixes)

    def __repr__(self) -> str:
        return f"AllowedHosts({sorted(self.names)})"


class Sessions:
    """Signed-in browsers: random session id -> the token it signed in with (in memory only).

    The token is kept so each new websocket re-checks it against the users file:
    a revoked token stops working at the next connection.
    """

    def __init__(self, ttl: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS):
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._by_id: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def create(self, token: str) -> str:
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = (token, time.monotonic() + self.ttl)
        while len(self._by_id) > self.max_sessions:
            self._by_id.popitem(last=False)
        return sid

    def token(self, sid: str | None) -> str | None:
        if not sid:
            return None
        entry = self._by_id.get(sid)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._by_id[sid]
            return None
        return entry[0]

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def __len__(self) -> int:
        return len(self._by_id)


def cookie_name(port: int, secure: bool) -> str:
    """Cookies are per host, not per port: the port keeps two servers on one machine apart.
    Under TLS the __Host- prefix makes browsers refuse it unless Secure, Path=/ and host-only."""
    return f"{'__Host-' if secure else ''}twinview-session-{port}"


def read_cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def set_cookie(name: str, value: str, secure: bool, max_age: int = SESSION_TTL_S) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def bearer_token(header: str | None) -> str | None:
    """The token of an 'Authorization: Bearer TOKEN' header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
