"""Commands from pages go through the same CommandService as the desktop's.

token_authenticator(): the bridge's token check (twinview.security.auth; the users
file is read at each login, so a revoked token stops working at once).
ServiceCommandHandler: runs a page's CommandRequest through the service on the
runtime's thread and answers the page; every command transition reaches every
page as a runtime event (twinview.web.publisher). A request from a connection that did not log in is refused here and
written to the same audit log (who: anonymous): read-only is the default.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable

from twinview.security.auth import AuthError, Principal, authenticate

from .bridge import CommandRequest, WebBridge

ANONYMOUS = "anonymous"
NOT_LOGGED_IN = "not logged in: this connection is read-only (log in with a token first)"


def token_authenticator(users_path: str | Path | None = None) -> Callable[[str], Principal | None]:
    """token -> Principal, or None when the token is unknown (or the users file is broken)."""

    def check(token: str) -> Principal | None:
        try:
            return authenticate(token=token, path=users_path)
        except AuthError:
            return None

    return check


class ServiceCommandHandler:
    """Runs pages' command requests through a CommandService (on the runtime's thread)."""

    def __init__(self, service: Any, bridge: WebBridge):
        self.service = service
        self.bridge = bridge

    def __call__(self, request: CommandRequest) -> dict:
        reply = {"type": "command_result", "ref": request.ref, "device": request.device, "command": request.command}
        principal = request.principal
        if not isinstance(principal, Principal):
            self._audit_anonymous(request)
            return {**reply, "ok": False, "state": "refused", "reason": NOT_LOGGED_IN}
        cmd = self.service.request(principal, request.device, request.command, request.args, request.confirmed)
        ok = cmd.state not in ("refused", "failed", "rejected")
        return {**reply, "id": cmd.id, "ok": ok, "state": cmd.state, "reason": cmd.reason}

    def _audit_anonymous(self, request: CommandRequest) -> None:
        now = time.time()
        try:
            self.service.audit.write({
                "ts": now, "event": "transition", "id": uuid.uuid4().hex, "state": "refused", "prev": None,
                "user": ANONYMOUS, "role": "", "site": self.service.site.name, "device": request.device,
                "command": request.command, "args": request.args, "desired": None, "reason": NOT_LOGGED_IN,
                "attempts": 0, "via": "web", "origin": request.origin[:200],
            })  # fmt: skip
        except OSError:
            self.service.counters["audit_errors"] = self.service.counters.get("audit_errors", 0) + 1
