"""Who may do what: the users file, password and token checks, and roles.

The users file is TOML, machine-local and never part of a site folder
(docs/commands.md, "Users"):

    # twinview users: edit with `twinview users ...`; keep this file private (mode 0600).
    [users.alice]
    role = "operator"
    password = "scrypt$16384$8$1$<salt, base64>$<hash, base64>"
    tokens = [
      { id = "3f9c2a1b", hash = "sha256$<hex>", label = "control-room PC", created = "2025-01-01T10:00:00Z" },
    ]

Passwords are stored as salted scrypt hashes (pbkdf2_sha256 hashes are also
accepted when verifying); API tokens only as the SHA-256 of the token, which is
shown once when issued. Every comparison is constant-time, and an unknown user
costs the same password hash as a known one.

Where the file is: an explicit path, else $TWINVIEW_USERS, else
$XDG_CONFIG_HOME/twinview/users.toml (~/.config/twinview/users.toml). A
`users.toml` inside a site folder is ignored on purpose: site folders are shared
and versioned, and a site copied from elsewhere must not be able to grant roles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .files import write_private

ROLES = ("viewer", "operator", "admin")  # lowest first; same as twinview.site.manifest.ROLES
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
USERS_ENV = "TWINVIEW_USERS"
TOKEN_PREFIX = "tvt_"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_MAX_SECRET = 4096  # longer passwords/tokens are refused before hashing


class AuthError(Exception):
    """Authentication failed or a users-file operation is not possible. The message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user and the role they act with."""

    name: str
    role: str

    def can(self, minimum_role: str) -> bool:
        """True when this principal's role is at least `minimum_role`."""
        return role_at_least(self.role, minimum_role)


@dataclass(frozen=True)
class Token:
    id: str
    hash: str
    label: str = ""
    created: str = ""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: str = ""  # encoded hash, "" when the user has no password (tokens only)
    tokens: tuple[Token, ...] = field(default_factory=tuple)


def role_at_least(role: str, minimum: str) -> bool:
    """viewer < operator < admin; unknown roles are never enough."""
    if role not in ROLE_RANK or minimum not in ROLE_RANK:
        return False
    return ROLE_RANK[role] >= ROLE_RANK[minimum]


def default_users_path() -> Path:
    """$TWINVIEW_USERS, else $XDG_CONFIG_HOME/twinview/users.toml (default ~/.config/...)."""
    env = os.environ.get(USERS_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "twinview" / "users.toml"


# --- secrets ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> str:
    """Salted scrypt hash: 'scrypt$N$r$p$salt$hash' (base64 salt and hash)."""
    if not isinstance(password, str) or not password:
        raise AuthError("a password must not be empty")
    if len(password) > _MAX_SECRET:
        raise AuthError(f"a password must be at most {_MAX_SECRET} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches an encoded hash (scrypt or pbkdf2_sha256). Never raises."""
    try:
        if not isinstance(password, str) or len(password) > _MAX_SECRET or not encoded:
            return False
        parts = encoded.split("$")
        secret = password.encode("utf-8")
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
                return False
            salt, want = base64.b64decode(parts[4]), base64.b64decode(parts[5])
            got = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=len(want))
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            iterations = int(parts[1])
            if not 1 <= iterations <= 10_000_000:
                return False
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, dklen=len(want))
        else:
            return False
        return hmac.compare_digest(got, want)
    except (ValueError, TypeError, MemoryError):
        return False


verify = verify_password

_dummy: list[str] = []


def _dummy_hash() -> str:
    """A real hash of a random password, so an unknown user costs the same work as a known one."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy[0]


def _token_digest(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the file -----------------------------------------------------------------------


def load_users(path: str | Path | None = None) -> dict[str, User]:
    """Read a users file; a missing file means no users. Raises AuthError on a broken file."""
    path = Path(path) if path is not None else default_users_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"cannot read users file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuthError(f"users file {path} is not valid TOML: {exc}") from None
    raw = data.get("users", {})
    if not isinstance(raw, dict):
        raise AuthError(f"users file {path}: [users] must be a table")
    users: dict[str, User] = {}
    for name, entry in raw.items():
        where = f"users file {path}: users.{name}"
        if not isinstance(entry, dict):
            raise AuthError(f"{where} must be a table")
        role = entry.get("role")
        if role not in ROLE_RANK:
            raise AuthError(f"{where}.role must be one of {', '.join(ROLES)}")
        password = entry.get("password", "")
        if not isinstance(password, str):
            raise AuthError(f"{where}.password must be a string")
        tokens = []
        for t in entry.get("tokens", []):
            if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not isinstance(t.get("hash"), str):
                raise AuthError(f"{where}.tokens: each token needs id and hash")
            tokens.append(Token(t["id"], t["hash"], str(t.get("label", "")), str(t.get("created", ""))))
        users[name] = User(name, role, password, tuple(tokens))
    return users


def _toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dump_users(users: dict[str, User]) -> str:
    """The users file text for `users` (stable order, comments at the top)."""
    lines = [
        "# twinview users: roles viewer < operator < admin.",
        "# Passwords are salted scrypt hashes; tokens are stored as SHA-256 hashes only.",
        "# Edit with `twinview users ...`; keep this file private (mode 0600).",
        "",
    ]
    for name in sorted(users):
        u = users[name]
        lines.append(f"[users.{_toml_str(name)}]")
        lines.append(f"role = {_toml_str(u.role)}")
        if u.password:
            lines.append(f"password = {_toml_str(u.password)}")
        if u.tokens:
            lines.append("tokens = [")
            for t in u.tokens:
                lines.append(
                    f"  {{ id = {_toml_str(t.id)}, hash = {_toml_str(t.hash)}, "
                    f"label = {_toml_str(t.label)}, created = {_toml_str(t.created)} }},"
                )
            lines.append("]")
        lines.append("")
    return "\n".join(lines)


def save_users(users: dict[str, User], path: str | Path | None = None) -> Path:
    """Write the users file atomically with mode 0600."""
    path = Path(path) if path is not None else default_users_path()
    write_private(path, dump_users(users).encode("utf-8"))
    return path


@contextmanager
def _editing(path: str | Path | None) -> Iterator[tuple[dict[str, User], Path]]:
    """Read-modify-write the users file under an exclusive lock (saved when the block ends)."""
    import fcntl

    path = Path(path) if path is not None else default_users_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = load_users(path)
        yield users, path
        save_users(users, path)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise AuthError("a user name is 1-64 characters: letters, digits, '_', '.', '@', '-'")


def _check_role(role: str) -> None:
    if role not in ROLE_RANK:
        raise AuthError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


def add_user(name: str, role: str, password: str | None = None, path: str | Path | None = None, *, replace: bool = False) -> User:
    """Add a user (`twinview users add NAME --role operator`). A user without a password
    can still log in with tokens. Raises AuthError if the user exists and not replace."""
    _check_name(name)
    _check_role(role)
    encoded = hash_password(password) if password else ""
    with _editing(path) as (users, _):
        if name in users and not replace:
            raise AuthError(f"user {name!r} already exists")
        old = users.get(name)
        user = User(name, role, encoded, old.tokens if old else ())
        users[name] = user
    return user


def set_role(name: str, role: str, path: str | Path | None = None) -> User:
    _check_role(role)
    with _editing(path) as (users, _):
        user = _existing(users, name)
        users[name] = user = User(name, role, user.password, user.tokens)
    return user


def set_password(name: str, password: str, path: str | Path | None = None) -> User:
    encoded = hash_password(password)
    with _editing(path) as (users, _):
        user = _existing(users, name)
        users[name] = user = User(name, user.role, encoded, user.tokens)
    return user


def remove_user(name: str, path: str | Path | None = None) -> None:
    with _editing(path) as (users, _):
        _existing(users, name)
        del users[name]


def issue_token(name: str, path: str | Path | None = None, label: str = "") -> str:
    """Create an API token for a user and return it. It is shown only now: the file keeps its hash."""
    token_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _editing(path) as (users, _):
        user = _existing(users, name)
        users[name] = User(name, user.role, user.password, user.tokens + (Token(token_id, _token_digest(token), label, created),))
    return token


def revoke_token(name: str, token_id: str, path: str | Path | None = None) -> None:
    """Remove one token of a user (by the id shown in the users file)."""
    with _editing(path) as (users, _):
        user = _existing(users, name)
        kept = tuple(t for t in user.tokens if t.id != token_id)
        if len(kept) == len(user.tokens):
            raise AuthError(f"user {name!r} has no token {token_id!r}")
        users[name] = User(name, user.role, user.password, kept)


def _existing(users: dict[str, User], name: str) -> User:
    user = users.get(name)
    if user is None:
        raise AuthError(f"no user {name!r}")
    return user


# --- authentication -----------------------------------------------------------------


def authenticate(
    name: str | None = None,
    password: str | None = None,
    *,
    token: str | None = None,
    path: str | Path | None = None,
    users: dict[str, User] | None = None,
) -> Principal:
    """Principal for (name, password) or for a token; raises AuthError("authentication failed").

    The error never says whether the user exists. With a token, `name` is optional;
    when given, it must be the token's owner.
    """
    if users is None:
        users = load_users(path)
    if token is not None:
        if not isinstance(token, str) or len(token) > _MAX_SECRET:
            raise AuthError("authentication failed")
        digest = _token_digest(token)
        found: User | None = None
        for user in users.values():
            for t in user.tokens:
                if hmac.compare_digest(t.hash.encode(), digest.encode()) and found is None:
                    found = user
        if found is None or (name is not None and name != found.name):
            raise AuthError("authentication failed")
        return Principal(found.name, found.role)
    if name is None or password is None:
        raise AuthError("authentication failed: give a user name and password, or a token")
    user = users.get(name)
    ok = verify_password(password, user.password if user and user.password else _dummy_hash())
    if user is None or not user.password or not ok:
        raise AuthError("authentication failed")
    return Principal(user.name, user.role)
