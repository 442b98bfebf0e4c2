"""The interlock language: what it accepts, what it refuses, and fail-safe evaluation."""

from __future__ import annotations

import pytest

from twinview.site.manifest import PointSpec
from twinview.twin.interlock import Interlock, InterlockError, check_interlock

VALUES = {
    "level": (42.0, "good"),
    "mode": ("auto", "good"),
    "door_open": (False, "good"),
    "flow-rate": (12, "good"),
    "zone.temp": (21.5, "good"),
}


def run(expr: str, values=VALUES):
    return Interlock.parse(expr).evaluate(lambda p: values.get(p))


@pytest.mark.parametrize(
    "expr, ok",
    [
        ("level < 50", True),
        ("level >= 42", True),
        ("level > 42", False),
        ("level != 42 or mode == 'auto'", True),
        ('mode == "manual"', False),
        ("not door_open and level < 80", True),
        ("door_open == false", True),
        ("(level < 10 or level > 40) and not (mode != 'auto')", True),
        ("0 <= flow-rate < 20", True),
        ("0 <= flow-rate < 10", False),
        ("zone.temp > -5.5", True),
        ("level > 1e1", True),
        ("true", True),
        ("false", False),
    ],
)
def test_valid_expressions(expr, ok):
    verdict = run(expr)
    assert verdict.ok is ok
    if not ok:
        assert "is false" in verdict.reason


@pytest.mark.parametrize(
    "expr, why",
    [
        ("__import__('os').system('true')", "calls"),
        ("level.__class__ < 1", None),  # a (dotted) point name, never an attribute: an unknown point
        ("level.__class__.__bases__[0] < 1", "subscripts"),
        ("().__class__", "attribute"),
        ("(lambda: 1)() == 1", "lambda"),
        ("2 ** 99999999 > 1", "arithmetic"),
        ("level * 2 > 1", "arithmetic"),
        ("level[0] > 1", "subscripts"),
        ("[1, 2] == level", "List"),
        ("{1: 2} == level", "Dict"),
        ("level if door_open else 1", "'if'"),
        ("[x for x in level]", "'for'"),
        ("level = 3", "=="),
        ("level < 10; import os", "unexpected character"),
        ("level in (1, 2)", "'in'"),
        ("f'{level}' == 'x'", "not a valid condition"),
        ("1e999 > level", "out of range"),
        ("0x1F > level", "plain decimal"),
        ("level > " + "9" * 400, "out of range"),
        ("(" * 50 + "level > 1" + ")" * 50, "nested"),
        ("level > 1 and " * 200 + "true", "at most"),
        ("-level < 1", "sign"),
        ("None == level", "'None'"),
        ("", "empty"),
        ("!door_open", "not"),
    ],
)
def test_hostile_or_invalid_expressions_are_refused(expr, why):
    if why is None:
        lock = Interlock.parse(expr)
        assert lock.points == ("level.__class__",)
        assert check_interlock(expr, VALUES) == ["unknown point 'level.__class__'"]
        assert not lock.evaluate(lambda p: VALUES.get(p)).ok
        return
    with pytest.raises(InterlockError) as info:
        Interlock.parse(expr)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "quality, reason",
    [("stale", "level is stale"), ("bad", "level is bad"), ("offline", "level is offline"), ("no data", "level has no value yet")],
)
def test_not_good_points_never_pass(quality, reason):
    values = dict(VALUES, level=(5.0, quality))
    verdict = run("level < 10", values)
    assert not verdict.ok and verdict.reason.startswith(reason)
    # even when the condition would hold without that point
    assert not run("mode == 'auto' or level < 10", values).ok


def test_missing_points_and_type_mismatches_fail_safe():
    assert run("pressure < 3").reason == "pressure is missing"
    v = run("mode != 3")  # text vs number would be "always true": refuse instead
    assert not v.ok and "cannot compare mode (text) with 3 (number)" in v.reason
    assert not run("level").ok and "not true/false" in run("level").reason
    assert not run("mode < 'b'").ok
    assert not run("door_open == 0").ok
    assert not run("level < 10", dict(VALUES, level=(float("nan"), "good"))).ok
    assert not run("level < 10", dict(VALUES, level=(None, "good"))).ok


def test_check_interlock_for_the_site_checker():
    specs = {
        "level": PointSpec("level", "t"),
        "mode": PointSpec("mode", "t", kind="enum", states=("auto", "manual")),
        "door_open": PointSpec("door_open", "t", kind="bool"),
    }
    assert check_interlock("level < 10 and mode == 'auto' and not door_open", specs) == []
    assert check_interlock("levle < 10", ["level"]) == ["unknown point 'levle'"]
    assert check_interlock("level < 'ten'", specs) == ["compares level (number) with 'ten' (text)"]
    assert check_interlock("mode == 'automatic'", specs) == ["mode has no state 'automatic' (states: auto, manual)"]
    assert check_interlock("mode > 'auto'", specs) == ["> needs numbers, not text (mode)"]
    assert check_interlock("level and door_open", specs) == ["level is not true/false; compare it with something"]
    assert check_interlock("open(1)", specs) == ["calls are not allowed"]
