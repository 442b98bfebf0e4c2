"""The append-only audit log: durable lines, filters, formatting, never rewritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from twinview.twin.audit import AuditLog, default_audit_path, format_rows, last_states, parse_since, read_audit

T = 1_700_000_000.0


def fill(path):
    log = AuditLog(path)
    rows = [
        {"ts": T, "id": "aaaa1111", "state": "requested", "user": "olga", "role": "operator", "device": "P-101", "command": "start", "args": {}},
        {"ts": T + 1, "id": "aaaa1111", "state": "sent", "user": "olga", "role": "operator", "device": "P-101", "command": "start", "args": {}},
        {"ts": T + 2, "id": "bbbb2222", "state": "refused", "user": "vic", "role": "viewer", "device": "V-7", "command": "open",
         "args": {"pos": 50}, "reason": "role viewer may not send 'open'"},
        {"ts": T + 3, "id": "aaaa1111", "state": "confirmed", "user": "olga", "role": "operator", "device": "P-101", "command": "start", "args": {}},
    ]  # fmt: skip
    for r in rows:
        log.write(r)
    log.close()
    return rows


def test_lines_round_trip_with_outcome_and_time(tmp_path):
    path = tmp_path / "a" / "audit.jsonl"
    fill(path)
    rows = read_audit(path)
    assert [r["state"] for r in rows] == ["requested", "sent", "refused", "confirmed"]
    assert [r["outcome"] for r in rows] == ["pending", "pending", "failed", "succeeded"]
    assert rows[0]["time"] == "2023-11-14T22:13:20.000Z"
    assert len(path.read_text().splitlines()) == 4
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_filters(tmp_path):
    path = tmp_path / "audit.jsonl"
    fill(path)
    assert [r["state"] for r in read_audit(path, device="P-101")] == ["requested", "sent", "confirmed"]
    assert [r["id"] for r in read_audit(path, user="vic")] == ["bbbb2222"]
    assert [r["state"] for r in read_audit(path, since=T + 1.5)] == ["refused", "confirmed"]
    assert [r["state"] for r in read_audit(path, since="2023-11-14T22:13:21Z", until=T + 2)] == ["sent", "refused"]
    assert len(read_audit(path, command_id="aaaa")) == 3
    assert len(read_audit(path, command_id="aaaa1111", state="sent")) == 1
    assert [r["state"] for r in read_audit(path, limit=1)] == ["confirmed"]
    assert read_audit(tmp_path / "none.jsonl") == []
    assert last_states(read_audit(path))["aaaa1111"]["state"] == "confirmed"


def test_parse_since():
    now = 1000000.0
    assert parse_since("15m", now) == now - 900
    assert parse_since("2h", now) == now - 7200
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("2023-11-14T22:13:20Z") == T
    assert parse_since(str(T)) == T
    try:
        parse_since("yesterday-ish")
    except ValueError as exc:
        assert "not a time" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_format_rows_table_and_json(tmp_path):
    path = tmp_path / "audit.jsonl"
    fill(path)
    rows = read_audit(path)
    table = format_rows(rows).splitlines()
    assert table[0].split() == ["TIME", "ID", "USER", "ROLE", "DEVICE", "COMMAND", "STATE", "ARGS", "REASON"]
    assert len(table) == 5
    assert "bbbb2222" in table[3] and "vic" in table[3] and "pos=50" in table[3] and "role viewer may not" in table[3]
    as_json = format_rows(rows, as_json=True).splitlines()
    assert [json.loads(line)["state"] for line in as_json] == ["requested", "sent", "refused", "confirmed"]


def test_appends_never_rewrite_and_torn_lines_are_reported(tmp_path):
    path = tmp_path / "audit.jsonl"
    fill(path)
    before = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"ts": 1, "id": "torn", "sta')  # a line cut short by a power failure
    log = AuditLog(path)
    log.write({"ts": T + 9, "id": "cccc3333", "state": "requested"})
    log.close()
    assert path.read_bytes().startswith(before)
    errors: list[str] = []
    rows = read_audit(path, errors=errors)
    assert [r["id"] for r in rows][:4] == ["aaaa1111", "aaaa1111", "bbbb2222", "aaaa1111"]
    assert len(errors) == 1 and "unreadable line" in errors[0]


def test_a_line_is_on_disk_when_write_returns(tmp_path):
    """The writer kills itself with SIGKILL right after write() returns: the line is there."""
    path = tmp_path / "audit.jsonl"
    code = (
        "import os, signal, sys\n"
        "from twinview.twin.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "log.write({'id': 'k1', 'state': 'sent', 'user': 'olga'})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], timeout=30)
    assert proc.returncode == -signal.SIGKILL
    [row] = read_audit(path)
    assert (row["id"], row["state"]) == ("k1", "sent")


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("TWINVIEW_AUDIT", str(tmp_path / "x.jsonl"))
    assert default_audit_path("Plant A") == tmp_path / "x.jsonl"
    monkeypatch.delenv("TWINVIEW_AUDIT")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_audit_path("Plant A/../x") == tmp_path / "state" / "twinview" / "Plant_A_.._x" / "audit.jsonl"
    assert default_audit_path("..") == tmp_path / "state" / "twinview" / "site" / "audit.jsonl"


def test_many_writers_interleave_whole_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys\n"
        "from twinview.twin.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for i in range(50):\n"
        "    log.write({'id': sys.argv[2], 'n': i, 'state': 'sent', 'pad': 'x' * 3000})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"w{k}"]) for k in range(3)]
    deadline = time.monotonic() + 60
    for p in procs:
        p.wait(max(1, deadline - time.monotonic()))
    errors: list[str] = []
    rows = read_audit(path, errors=errors)
    assert errors == [] and len(rows) == 150
    for k in range(3):
        assert [r["n"] for r in rows if r["id"] == f"w{k}"] == list(range(50))
    assert os.path.getsize(path) > 150 * 3000

