"""Commands in the desktop app: controls per command, confirmation, sign-in, and the command log.

The panel only asks; the CommandService decides (role, arguments, interlock)
and every outcome, refusals included, is shown as the service reports it.
Desired values are shown beside reported ones until the device confirms.
"""

from __future__ import annotations

import time
from typing import Any

from imgui_bundle import imgui

from .panels import BAD, DIM, GOOD, WARN, age_text, format_value

UNVERIFIED = (1.0, 0.62, 0.25, 1.0)  # final, but not confirmed: neither the success green nor a failure red
STATE_COLORS = {
    "requested": WARN, "sent": WARN, "acknowledged": WARN, "confirmed": GOOD, "unverified": UNVERIFIED,
    "refused": BAD, "rejected": BAD, "timed_out": BAD, "expired": BAD, "failed": BAD,
}  # fmt: skip


class CommandPanel:
    def __init__(self, live: Any):
        self.live = live
        self.values: dict[tuple[str, str, str], Any] = {}
        self._confirming: tuple[str, Any, dict] | None = None  # (device id, spec, args)
        self._login_open = False
        self._user = ""
        self._password = ""
        self._token = ""
        self._login_error = ""

    # --- inspector section ----------------------------------------------------------

    def draw_device(self, index: int) -> None:
        device = self.live.site.devices[index]
        if getattr(self.live, "mode", "live") != "live" and device.commands:
            imgui.text_colored(WARN, f"Commands disabled: showing the {self.live.mode}.")
            return
        if self.live.commands is None or not device.commands:
            return
        if not imgui.collapsing_header("Commands", imgui.TreeNodeFlags_.default_open):
            return
        principal = self.live.principal
        if principal is None:
            imgui.text_colored(DIM, "Look only.")
            imgui.same_line()
            if imgui.small_button("Sign in to act"):
                self._login_open = True
        else:
            imgui.text_colored(DIM, f"acting as {principal.name} ({principal.role})")
        for spec in device.commands:
            self._command_row(device, spec, principal)
        self._desired(device)
        self._recent(device)

    def _command_row(self, device, spec, principal) -> None:
        args: dict[str, Any] = {}
        imgui.push_id(f"{device.id}.{spec.name}")
        for arg in spec.args:
            key = (device.id, spec.name, arg.name)
            if arg.kind == "bool":
                value = bool(self.values.get(key, arg.default if arg.default is not None else False))
                _, value = imgui.checkbox(arg.name, value)
            elif arg.kind == "enum":
                current = self.values.get(key, arg.default if arg.default in arg.states else arg.states[0])
                _, k = imgui.combo(arg.name, list(arg.states).index(current), list(arg.states))
                value = arg.states[k]
            else:
                lo = arg.min if arg.min is not None else 0.0
                hi = arg.max if arg.max is not None else max(lo + 100.0, 100.0)
                value = float(self.values.get(key, self._initial(device, spec, arg, lo)))
                imgui.set_next_item_width(160)
                _, value = imgui.slider_float(arg.name, value, float(lo), float(hi), "%.1f")
            self.values[key] = value
            args[arg.name] = value
        allowed = principal is not None and principal.can(spec.role)
        label = spec.label or spec.name.replace("_", " ")
        if imgui.button(label + ("…" if spec.confirm else "")):
            if spec.confirm:
                self._confirming = (device.id, spec, args)
            else:
                self.live.request_command(device.id, spec.name, args, confirmed=False)
        if not allowed and imgui.is_item_hovered():
            who = "you are not signed in" if principal is None else f"you are {principal.role}"
            imgui.set_tooltip(f"needs the {spec.role} role ({who}): the request will be refused and logged")
        if spec.interlock:
            imgui.same_line()
            imgui.text_colored(DIM, f"only if {spec.interlock}")
        imgui.pop_id()

    def _initial(self, device, spec, arg, fallback: float) -> float:
        """Where a slider starts: the one rule every view follows (twin.commands.initial_value)."""
        from twinview.twin.commands import initial_value

        def reported(point: str):
            return getattr(self.live.point_state(device.id, point), "good_value", None)

        value = initial_value(spec, arg, reported)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return fallback

    def _desired(self, device) -> None:
        rows = self.live.commands.desired(device.id)
        if not rows:
            return
        imgui.text_colored(WARN, "Desired vs reported (not confirmed yet)")
        if imgui.begin_table("desired", 4, imgui.TableFlags_.row_bg):
            for row in rows:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(row.point)
                imgui.table_next_column()
                imgui.text_colored(WARN, f"wanted {format_value(row.wanted)}")
                imgui.table_next_column()
                imgui.text(f"reported {format_value(row.reported) if row.reported is not None else '-'}")
                imgui.table_next_column()
                imgui.text_colored(STATE_COLORS.get(row.state, DIM), row.state)
            imgui.end_table()

    def _recent(self, device) -> None:
        recent = self.live.commands.recent(device.id, n=5)
        if not recent:
            return
        imgui.text_colored(DIM, "Recent commands")
        now = time.time()
        for cmd in recent:
            imgui.text_colored(STATE_COLORS.get(cmd.state, DIM), f"{cmd.state:<12}")
            imgui.same_line()
            imgui.text(f"{cmd.command} {format_args(cmd.args)}  ·  {cmd.user}  ·  {age_text(now - cmd.updated)} ago")
            if cmd.reason and imgui.is_item_hovered():
                imgui.set_tooltip(cmd.reason)

    # --- windows and modals ---------------------------------------------------------

    def draw_windows(self, x: float, y: float) -> None:
        if self.live.commands is None:
            return
        self._log_window(x, y)
        self._confirm_modal()
        self._login_modal()

    def _log_window(self, x: float, y: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.set_next_window_size(imgui.ImVec2(520, 150), imgui.Cond_.first_use_ever)
        imgui.begin("Command log")
        now = time.time()
        for rec in getattr(self.live.commands, "unresolved", ()):
            imgui.text_colored(WARN, f"outcome unknown: {rec.get('device')} {rec.get('command')} "
                                     f"({rec.get('state')} at {rec.get('time', '?')}, by {rec.get('user')}); "
                                     "the viewer stopped before it was confirmed. Check the device.")  # fmt: skip
        flags = imgui.TableFlags_.row_bg | imgui.TableFlags_.scroll_y
        if imgui.begin_table("log", 5, flags):
            imgui.table_setup_column("state")
            imgui.table_setup_column("device")
            imgui.table_setup_column("command")
            imgui.table_setup_column("who")
            imgui.table_setup_column("when / why")
            imgui.table_headers_row()
            for cmd in self.live.commands.recent(n=50):
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text_colored(STATE_COLORS.get(cmd.state, DIM), cmd.state)
                imgui.table_next_column()
                imgui.text(cmd.device)
                imgui.table_next_column()
                imgui.text(f"{cmd.command} {format_args(cmd.args)}")
                imgui.table_next_column()
                imgui.text_colored(DIM, f"{cmd.user} ({cmd.role})")
                imgui.table_next_column()
                imgui.text_colored(DIM, f"{age_text(now - cmd.updated)} ago  {cmd.reason}")
            imgui.end_table()
        imgui.end()

    def _confirm_modal(self) -> None:
        if self._confirming is not None and not imgui.is_popup_open("Confirm command"):
            imgui.open_popup("Confirm command")
        opened, _ = imgui.begin_popup_modal("Confirm command", None, imgui.WindowFlags_.always_auto_resize)
        if not opened:
            return
        if self._confirming is None:
            imgui.close_current_popup()
            imgui.end_popup()
            return
        device_id, spec, args = self._confirming
        device = self.live.site.device(device_id)
        imgui.text(f"{spec.label or spec.name} on {device.name if device else device_id} ({device_id})?")
        if args:
            imgui.text_colored(DIM, format_args(args))
        if imgui.button("Send"):
            self.live.request_command(device_id, spec.name, args, confirmed=True)
            self._confirming = None
            imgui.close_current_popup()
        imgui.same_line()
        if imgui.button("Cancel"):
            self._confirming = None
            imgui.close_current_popup()
        imgui.end_popup()

    def _login_modal(self) -> None:
        if self._login_open and not imgui.is_popup_open("Sign in"):
            imgui.open_popup("Sign in")
        opened, _ = imgui.begin_popup_modal("Sign in", None, imgui.WindowFlags_.always_auto_resize)
        if not opened:
            return
        imgui.text("Sign in to send commands (users file: twinview users --help)")
        _, self._user = imgui.input_text("user", self._user)
        _, self._password = imgui.input_text("password", self._password, imgui.InputTextFlags_.password)
        imgui.text_colored(DIM, "or")
        _, self._token = imgui.input_text("API token", self._token, imgui.InputTextFlags_.password)
        if self._login_error:
            imgui.text_colored(BAD, self._login_error)
        if imgui.button("Sign in"):
            self._sign_in()
            if self.live.principal is not None:
                imgui.close_current_popup()
        imgui.same_line()
        if imgui.button("Cancel"):
            self._login_open = False
            imgui.close_current_popup()
        imgui.end_popup()

    def _sign_in(self) -> None:
        from twinview.security.auth import AuthError, authenticate

        try:
            if self._token:
                principal = authenticate(token=self._token)
            else:
                principal = authenticate(self._user, self._password)
        except AuthError as exc:
            self._login_error = str(exc)
            return
        self.live.principal = principal
        self._login_open = False
        self._password = self._token = self._login_error = ""


def format_args(args: dict) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in (args or {}).items())
