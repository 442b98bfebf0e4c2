"""The desktop's alarm list and the inspector's alarm section.

The list shows every alarm that is not normal (or every alarm), sortable by any
column and filtered by severity, state, area, time and text; a row's buttons
acknowledge or shelve it (the engine checks the role and audits), and a click
on the row flies the camera to the device and selects it. A flood is shown as a
banner naming the area and its first-out alarm; a chattering alarm has one row
with a mark. The inspector gets the selected device's alarms and their history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from imgui_bundle import imgui

from twinview.twin.vocabulary import SEVERITIES, AlarmState

from .panels import BAD, DIM, GOOD, WARN

SEVERITY_COLORS = {
    "critical": imgui.ImVec4(1.0, 0.25, 0.25, 1.0),
    "high": imgui.ImVec4(1.0, 0.55, 0.15, 1.0),
    "medium": imgui.ImVec4(1.0, 0.85, 0.25, 1.0),
    "low": imgui.ImVec4(0.35, 0.8, 1.0, 1.0),
}
STATE_WORDS = {s.value: s.value.replace("_", " ") for s in AlarmState}
TIME_WINDOWS = (("any time", 0.0), ("last hour", 3600.0), ("last 24 h", 86400.0), ("last 7 days", 7 * 86400.0))
SHELVE_CHOICES = (("15 min", 900.0), ("1 h", 3600.0), ("4 h", 4 * 3600.0), ("8 h", 8 * 3600.0), ("24 h", 86400.0))
COLUMNS = ("time", "severity", "state", "area", "device", "alarm", "value", "message")


@dataclass
class AlarmFilter:
    severities: set[str] = field(default_factory=lambda: set(SEVERITIES))
    states: set[str] = field(default_factory=lambda: {s.value for s in AlarmState} - {AlarmState.NORMAL.value})
    area: str = ""  # "" any
    window: float = 0.0  # seconds back from now (0: any time)
    text: str = ""
    sort: str = "time"
    descending: bool = True


def _when(t: float | None) -> str:
    if not t:
        return "-"
    stamp = datetime.fromtimestamp(t)
    return stamp.strftime("%H:%M:%S") if time.time() - t < 86400 else stamp.strftime("%m-%d %H:%M")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


class AlarmPanel:
    """The alarm list window (ImGui). `on_select(device_index)` flies to and selects a device."""

    def __init__(self, live: Any, on_select: Callable[[int], None], on_sign_in: Callable[[], None] | None = None):
        self.live = live
        self.on_select = on_select
        self.on_sign_in = on_sign_in
        self.filter = AlarmFilter()
        self.message = ""
        self.message_ok = True
        self._shelving: str | None = None
        self._shelve_choice = 1
        self._reason = ""
        self.frames = 0  # times the list was drawn to the end (a failing draw does not count)
        self._generation = 0  # AlarmsChanged events seen: the list is rebuilt only when it or the filter changed
        self._cache: tuple[tuple, list[dict[str, Any]]] | None = None
        from twinview.twin.events import AlarmsChanged

        live.events.subscribe(AlarmsChanged, self._on_alarms, owner=self)

    def _on_alarms(self, event: Any) -> None:
        self._generation += 1

    @property
    def engine(self) -> Any:
        return self.live.alarms

    # --- logic (tested without a window) ----------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Alarms as the list shows them now: filtered and sorted (rebuilt when alarms, filter or second change)."""
        engine = self.engine
        if engine is None:
            return []
        f = self.filter
        key = (self._generation, int(self.live.clock.now()), frozenset(f.severities), frozenset(f.states), f.area,
               f.window, f.text, f.sort, f.descending)  # fmt: skip
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        rows = self._rows(engine, f)
        self._cache = (key, rows)
        return rows

    def _rows(self, engine: Any, f: AlarmFilter) -> list[dict[str, Any]]:
        include_normal = AlarmState.NORMAL.value in f.states
        now = self.live.clock.now()
        terms = f.text.lower().split()
        out = []
        for a in engine.alarms(include_normal=include_normal):
            if a["severity"] not in f.severities or a["state"] not in f.states:
                continue
            if f.area and a["area"] != f.area:
                continue
            if f.window and (a["changed_at"] or a["activated_at"] or 0) < now - f.window:
                continue
            hay = f"{a['id']} {a['message']} {a['area']}".lower()
            if terms and not all(t in hay for t in terms):
                continue
            out.append(a)
        key = {
            "time": lambda a: a["activated_at"] or 0.0, "severity": lambda a: a["priority"],
            "state": lambda a: a["state"], "area": lambda a: a["area"], "device": lambda a: a["device"],
            "alarm": lambda a: a["id"], "value": lambda a: str(a["value"]), "message": lambda a: a["message"],
        }.get(f.sort, lambda a: a["activated_at"] or 0.0)  # fmt: skip
        out.sort(key=key, reverse=f.descending)
        return out

    def acknowledge(self, alarm_id: str) -> bool:
        ok, why = self.engine.acknowledge(alarm_id, self.live.principal)
        self._say(ok, f"{alarm_id} acknowledged" if ok else f"{alarm_id}: {why}")
        return ok

    def acknowledge_all(self, rows: list[dict[str, Any]]) -> int:
        done = 0
        for a in rows:
            if not a["acked"] and a["state"] in ("unacknowledged", "returned_unacknowledged"):
                ok, why = self.engine.acknowledge(a["id"], self.live.principal)
                done += ok
                if not ok:
                    self._say(False, f"{a['id']}: {why}")
                    return done
        self._say(True, f"{done} alarm(s) acknowledged")
        return done

    def shelve(self, alarm_id: str, seconds: float, reason: str) -> bool:
        ok, why = self.engine.shelve(alarm_id, self.live.principal, seconds, reason)
        self._say(ok, f"{alarm_id} shelved" if ok else f"{alarm_id}: {why}")
        return ok

    def unshelve(self, alarm_id: str) -> bool:
        ok, why = self.engine.unshelve(alarm_id, self.live.principal)
        self._say(ok, f"{alarm_id} unshelved" if ok else f"{alarm_id}: {why}")
        return ok

    def set_out_of_service(self, alarm_id: str, on: bool, reason: str = "maintenance (desktop)") -> bool:
        ok, why = self.engine.set_out_of_service(alarm_id, self.live.principal, on, reason)
        self._say(ok, f"{alarm_id} {'out of service' if on else 'back in service'}" if ok else f"{alarm_id}: {why}")
        return ok

    def go_to(self, alarm: dict[str, Any]) -> None:
        index = self.live.device_index(alarm["device"])
        if index is not None:
            self.on_select(index)

    def _say(self, ok: bool, text: str) -> None:
        self.message_ok, self.message = ok, text
        self._cache = None  # an action changes rows before the next step publishes it

    # --- drawing ----------------------------------------------------------------------------

    def draw(self, x: float, y: float, width: float = 900, height: float = 260) -> None:
        engine = self.engine
        if engine is None:
            return
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.set_next_window_size(imgui.ImVec2(width, height), imgui.Cond_.first_use_ever)
        counts = engine.counts()
        unack = counts["unacknowledged"] + counts["returned_unacknowledged"]
        imgui.begin(f"Alarms ({counts['unacknowledged'] + counts['acknowledged']} active, {unack} unacknowledged)###alarms")
        for flood in engine.flood_list():
            imgui.text_colored(BAD, f"FLOOD in {flood['area'] or 'the site'}: {flood['count']} alarms in "
                                    f"{engine.settings.flood_window / 60:g} min; first out: {flood['first_out']}")  # fmt: skip
        self._filters(engine)
        rows = self.rows()
        principal = self.live.principal
        if principal is None:
            imgui.text_colored(DIM, "Look only: sign in as an operator to acknowledge and shelve.")
            if self.on_sign_in is not None:
                imgui.same_line()
                if imgui.small_button("Sign in"):
                    self.on_sign_in()
        else:
            imgui.text_colored(DIM, f"{len(rows)} shown  ·  acting as {principal.name} ({principal.role})")
            imgui.same_line()
            if imgui.small_button("Acknowledge all shown"):
                self.acknowledge_all(rows)
        if self.message:
            imgui.same_line()
            imgui.text_colored(GOOD if self.message_ok else BAD, self.message)
        self._table(rows)
        self._shelve_popup()
        imgui.end()
        self.frames += 1

    def _filters(self, engine: Any) -> None:
        f = self.filter
        for sev in reversed(SEVERITIES):
            imgui.same_line() if sev != SEVERITIES[-1] else None
            imgui.push_style_color(imgui.Col_.text, SEVERITY_COLORS[sev])
            changed, on = imgui.checkbox(f"{sev}##sev", sev in f.severities)
            imgui.pop_style_color()
            if changed:
                f.severities = (f.severities | {sev}) if on else (f.severities - {sev})
        imgui.same_line()
        imgui.set_next_item_width(130)
        areas = ["all areas"] + engine.areas
        current = areas.index(f.area) if f.area in areas else 0
        changed, k = imgui.combo("##area", current, areas)
        if changed:
            f.area = "" if k == 0 else areas[k]
        imgui.same_line()
        imgui.set_next_item_width(110)
        windows = [w for w, _ in TIME_WINDOWS]
        current = next((i for i, (_, s) in enumerate(TIME_WINDOWS) if s == f.window), 0)
        changed, k = imgui.combo("##when", current, windows)
        if changed:
            f.window = TIME_WINDOWS[k][1]
        imgui.same_line()
        imgui.set_next_item_width(160)
        _, f.text = imgui.input_text_with_hint("##find", "find alarm, device, text", f.text)
        for state in AlarmState:
            if state is not AlarmState.NORMAL:
                imgui.same_line() if state is not AlarmState.UNACKNOWLEDGED else None
            changed, on = imgui.checkbox(f"{STATE_WORDS[state.value]}##st", state.value in f.states)
            if changed:
                f.states = (f.states | {state.value}) if on else (f.states - {state.value})

    def _table(self, rows: list[dict[str, Any]]) -> None:
        flags = (imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.sortable
                 | imgui.TableFlags_.scroll_y | imgui.TableFlags_.resizable)  # fmt: skip
        if not imgui.begin_table("alarm_list", len(COLUMNS) + 1, flags):
            return
        for name in COLUMNS:
            col_flags = imgui.TableColumnFlags_.default_sort if name == "time" else 0
            imgui.table_setup_column(name, col_flags | (imgui.TableColumnFlags_.prefer_sort_descending if name == "time" else 0))
        imgui.table_setup_column("", imgui.TableColumnFlags_.no_sort)
        imgui.table_setup_scroll_freeze(0, 1)
        imgui.table_headers_row()
        specs = imgui.table_get_sort_specs()
        if specs is not None and specs.specs_dirty and specs.specs_count > 0:
            spec = specs.get_specs(0)
            self.filter.sort = COLUMNS[spec.column_index] if spec.column_index < len(COLUMNS) else "time"
            self.filter.descending = spec.sort_direction == imgui.SortDirection.descending
            specs.specs_dirty = False
        blink = time.monotonic() % 0.8 < 0.4
        for a in rows:
            imgui.table_next_row()
            imgui.push_id(a["id"])
            sev_color = SEVERITY_COLORS[a["severity"]]
            unacked = a["state"] in ("unacknowledged", "returned_unacknowledged")
            imgui.table_next_column()
            clicked, _ = imgui.selectable(_when(a["activated_at"]), False, imgui.SelectableFlags_.span_all_columns
                                          | imgui.SelectableFlags_.allow_overlap)  # fmt: skip
            if clicked:
                self.go_to(a)
            if imgui.is_item_hovered():
                imgui.set_tooltip(self._tooltip(a))
            imgui.table_next_column()
            imgui.text_colored(sev_color if not unacked or blink else DIM, a["severity"])
            imgui.table_next_column()
            word = STATE_WORDS.get(a["state"], a["state"])
            if a["chattering"]:
                word += " · chattering"
            if a["first_out"]:
                word += " · first out"
            imgui.text_colored(WARN if unacked else DIM, word)
            imgui.table_next_column()
            imgui.text(a["area"] or "-")
            imgui.table_next_column()
            imgui.text(a["device"])
            imgui.table_next_column()
            imgui.text(a["name"])
            imgui.table_next_column()
            imgui.text(_value(a["value"]))
            imgui.table_next_column()
            imgui.text(a["message"])
            imgui.table_next_column()
            if not a["acked"] and imgui.small_button("Ack"):
                self.acknowledge(a["id"])
            imgui.same_line()
            if a["state"] == "shelved":
                if imgui.small_button("Unshelve"):
                    self.unshelve(a["id"])
            elif imgui.small_button("Shelve…"):
                self._shelving, self._reason = a["id"], ""
                imgui.open_popup("shelve")
            principal = self.live.principal
            if principal is not None and principal.can("admin"):
                imgui.same_line()
                if a["state"] == "out_of_service":
                    if imgui.small_button("In service"):
                        self.set_out_of_service(a["id"], False)
                elif imgui.small_button("Out of service"):
                    self.set_out_of_service(a["id"], True)
            imgui.pop_id()
        imgui.end_table()

    def _tooltip(self, a: dict[str, Any]) -> str:
        lines = [a["id"], a["message"], f"activated {_when(a['activated_at'])}, cleared {_when(a['cleared_at'])}"]
        if a["acked_by"]:
            lines.append(f"acknowledged {_when(a['acked_at'])} by {a['acked_by']}")
        if a["shelved_until"]:
            lines.append(f"shelved until {_when(a['shelved_until'])} by {a['shelved_by']}: {a['shelve_reason']}")
        lines.append(f"{a['activations']} activation(s); click to fly to {a['device']}")
        return "\n".join(lines)

    def _shelve_popup(self) -> None:
        if self._shelving is not None and not imgui.is_popup_open("shelve"):
            imgui.open_popup("shelve")
        if imgui.begin_popup_modal("shelve", None, imgui.WindowFlags_.always_auto_resize)[0]:
            imgui.text(f"Shelve {self._shelving}")
            _, self._shelve_choice = imgui.combo("for", self._shelve_choice, [c for c, _ in SHELVE_CHOICES])
            _, self._reason = imgui.input_text("reason", self._reason)
            if imgui.button("Shelve") and self._shelving is not None:
                if self.shelve(self._shelving, SHELVE_CHOICES[self._shelve_choice][1], self._reason):
                    self._shelving = None
                    imgui.close_current_popup()
            imgui.same_line()
            if imgui.button("Cancel"):
                self._shelving = None
                imgui.close_current_popup()
            imgui.end_popup()


def draw_device_alarms(live: Any, device_index: int) -> None:
    """The inspector's section: the device's alarms now, then their history (newest first)."""
    engine = live.alarms
    if engine is None or engine.dev_start[device_index] == engine.dev_start[device_index + 1]:
        return
    alarms = engine.device_alarms(device_index)
    shown = sum(1 for a in alarms if a["state"] != "normal")
    if not imgui.collapsing_header(f"Alarms ({shown} not normal)###device_alarms", imgui.TreeNodeFlags_.default_open):
        return
    for a in alarms:
        color = SEVERITY_COLORS[a["severity"]] if a["state"] != "normal" else DIM
        imgui.text_colored(color, f"{a['name']}: {STATE_WORDS.get(a['state'], a['state'])}")
        if imgui.is_item_hovered():
            imgui.set_tooltip(a["message"])
    device_id = live.site.devices[device_index].id
    history = engine.history(device=device_id, limit=30)
    if history and imgui.tree_node(f"history ({len(history)} latest)##alarm_history"):
        for rec in history:
            who = f" by {rec['user']}" if rec.get("user") else ""
            why = f": {rec['reason']}" if rec.get("reason") else ""
            imgui.text_colored(DIM, f"{_when(rec.get('ts'))}  {rec.get('id', '').split('/', 1)[-1]}  {rec.get('ev')}{who}{why}")
        imgui.tree_pop()
