"""Interlocks: a tiny, safe condition language over a device's points.

    level < 10
    mode == "auto" and not (pressure >= 6.5 or door_open)
    0 <= flow-rate < 120

Grammar: comparisons (< <= > >= == !=, chained), and / or / not, parentheses,
numbers, "strings" or 'strings', true / false, and point ids (which may contain
'-' and '.', as in the manifest). Nothing else: no arithmetic, calls, attributes,
subscripts or names other than the device's points.

The text is tokenized here, point ids and strings become placeholders, and the
result is parsed with Python's ast module and checked node by node against a
short allow-list before anything is evaluated. It is never passed to eval.

Evaluation is fail-safe: the interlock passes only when every point it names
has a GOOD value and the condition is true. A stale, bad, offline or missing
point holds the command back ("level is stale"), as does a type mismatch
(comparing a number with a string) or a bare point that is not a boolean.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_NODES = 200
KEYWORDS = {"and", "or", "not", "true", "false"}
_PY_KEYWORDS = {
    "lambda", "if", "else", "for", "in", "is", "import", "from", "yield", "await", "async", "def", "class",
    "return", "while", "with", "as", "try", "except", "finally", "raise", "del", "global", "nonlocal",
    "pass", "break", "continue", "assert", "None", "True", "False",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_STRING = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""")
_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_REFUSED = {
    ast.Call: "calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.BinOp: "arithmetic is not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.Starred: "unpacking is not allowed",
    ast.NamedExpr: "assignment is not allowed",
}

# Quality labels (twinview.twin.vocabulary.Quality.label) -> how a reason reads.
_QUALITY_TEXT = {"stale": "is stale", "bad": "is bad", "offline": "is offline (device offline)", "no data": "has no value yet"}

Reader = Callable[[str], "tuple[Any, str] | None"]  # point id -> (value, quality label) or None when unknown


class InterlockError(ValueError):
    """An interlock expression is not valid. The message says why."""


@dataclass(frozen=True)
class Verdict:
    """Outcome of evaluating an interlock: ok, and if not, why (safe to show to an operator)."""

    ok: bool
    reason: str = ""
    values: tuple[tuple[str, Any], ...] = ()  # the point values it looked at
    unknown: bool = False  # held back because a point is not GOOD (not because the condition is false)

    def __bool__(self) -> bool:
        return self.ok


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _tokenize(expr: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Python source with placeholders, placeholder -> point id, placeholder -> string value."""
    points: dict[str, str] = {}
    strings: dict[str, str] = {}
    by_point: dict[str, str] = {}
    out: list[str] = []
    i, n, depth = 0, len(expr), 0
    while i < n:
        ch = expr[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            m = _STRING.match(expr, i)
            if m is None:
                raise InterlockError(f"unterminated string at column {i + 1}")
            name = f"_s{len(strings)}"
            strings[name] = _unescape(m.group()[1:-1])
            out.append(name)
            i = m.end()
            continue
        m = _WORD.match(expr, i)
        if m is not None:
            word = m.group()
            i = m.end()
            if _NUMBER.match(word):
                if len(word) > 40:
                    raise InterlockError(f"number {word[:20]}... is out of range")
                value = float(word) if any(c in word for c in ".eE") else int(word)
                if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > 1e300:
                    raise InterlockError(f"number {word} is out of range")
                out.append(repr(value))
            elif word in ("and", "or", "not"):
                out.append(word)
            elif word in ("true", "false"):
                out.append("True" if word == "true" else "False")
            elif word in _PY_KEYWORDS:
                raise InterlockError(f"{word!r} is not allowed (only and, or, not, true, false)")
            elif word[0].isdigit() and re.match(r"\d", word):
                # e.g. 0x10, 1_000, 3j: not a plain number and not a point id we can read unambiguously
                if "_" in word or word[:2].lower() in ("0x", "0o", "0b") or word[-1] in "jJ":
                    raise InterlockError(f"{word!r} is not a plain decimal number")
                name = by_point.setdefault(word, f"_p{len(by_point)}")
                points[name] = word
                out.append(name)
            else:
                name = by_point.setdefault(word, f"_p{len(by_point)}")
                points[name] = word
                out.append(name)
            continue
        two = expr[i : i + 2]
        if two in ("<=", ">=", "==", "!=", "**"):
            out.append(two)
            i += 2
            continue
        if ch == "=":
            raise InterlockError(f"use == to compare (column {i + 1})")
        if ch == "!":
            raise InterlockError(f"use 'not' instead of '!' (column {i + 1})")
        if ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise InterlockError(f"nested more than {MAX_DEPTH} levels deep")
        elif ch == ")":
            depth -= 1
        elif ch not in "<>+-.,[]{}:*/%@&|^~":
            # Other punctuation passes through so that the parser can name what it is
            # ("attribute access", "subscripts"); characters nothing uses are refused here.
            raise InterlockError(f"unexpected character {ch!r} at column {i + 1}")
        out.append(ch)
        i += 1
    return " ".join(out), points, strings


def _check_tree(tree: ast.AST, points: dict[str, str], strings: dict[str, str]) -> None:
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise InterlockError(f"expression is too large (more than {MAX_NODES} parts)")
        kind = type(node)
        if kind in _REFUSED:
            raise InterlockError(_REFUSED[kind])
        if kind in (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Load):
            continue
        if kind is ast.UnaryOp:
            if isinstance(node.op, (ast.USub, ast.UAdd)) and not (
                isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
            ):
                raise InterlockError("a sign may only stand before a number")
            if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
                raise InterlockError("only 'not' and a number's sign are allowed as unary operators")
            continue
        if kind is ast.Compare:
            for op in node.ops:
                if type(op) not in _OPS:
                    raise InterlockError("only < <= > >= == != are allowed as comparisons")
            continue
        if kind in _OPS:
            continue
        if kind is ast.Constant:
            if type(node.value) not in (int, float, bool):
                raise InterlockError("only numbers, strings and true/false are allowed as values")
            continue
        if kind is ast.Name:
            if node.id not in points and node.id not in strings:
                raise InterlockError(f"unexpected name {node.id!r}")
            continue
        raise InterlockError(f"{kind.__name__} is not allowed in an interlock")


@dataclass(frozen=True)
class Interlock:
    """A parsed, checked interlock. Build with Interlock.parse(text)."""

    text: str
    tree: ast.Expression
    placeholders: Mapping[str, str]  # placeholder -> point id
    strings: Mapping[str, str]

    @property
    def points(self) -> tuple[str, ...]:
        """The point ids the expression names, in first-use order."""
        return tuple(self.placeholders.values())

    @classmethod
    def parse(cls, text: str) -> "Interlock":
        """Parse and check; raises InterlockError with a readable message."""
        if not isinstance(text, str):
            raise InterlockError("an interlock must be a string")
        if len(text) > MAX_LENGTH:
            raise InterlockError(f"an interlock is at most {MAX_LENGTH} characters")
        if not text.strip():
            raise InterlockError("an interlock must not be empty")
        source, points, strings = _tokenize(text)
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise InterlockError(f"not a valid condition ({exc.msg})") from None
        except (RecursionError, MemoryError, ValueError):
            raise InterlockError("not a valid condition") from None
        _check_tree(tree, points, strings)
        return cls(text, tree, points, strings)

    def evaluate(self, read: Reader) -> Verdict:
        """Fail-safe evaluation: every named point must be GOOD, types must match, result must be true."""
        values: dict[str, Any] = {}
        for ph, point in self.placeholders.items():
            got = read(point)
            if got is None:
                return Verdict(False, f"{point} is missing", unknown=True)
            value, quality = got
            if quality != "good":
                return Verdict(False, f"{point} {_QUALITY_TEXT.get(quality, 'is ' + str(quality))}", unknown=True)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return Verdict(False, f"{point} has no usable value", unknown=True)
            values[ph] = value
        shown = tuple((self.placeholders[k], v) for k, v in values.items())
        try:
            result = self._truth(self.tree.body, values)
        except _Mismatch as exc:
            return Verdict(False, str(exc), shown)
        except (RecursionError, TypeError, ValueError, OverflowError) as exc:  # defensive: never raise
            return Verdict(False, f"the interlock could not be evaluated ({type(exc).__name__})", shown)
        if not result:
            detail = f" ({_describe(shown)})" if shown else ""
            return Verdict(False, f"{self.text.strip()} is false{detail}", shown)
        return Verdict(True, "", shown)

    def _eval(self, node: ast.AST, values: dict[str, Any]) -> Any:
        kind = type(node)
        if kind is ast.BoolOp:
            want_all = isinstance(node.op, ast.And)
            for sub in node.values:
                v = self._truth(sub, values)
                if v is not want_all:
                    return v
            return want_all
        if kind is ast.UnaryOp:
            if isinstance(node.op, ast.Not):
                return not self._truth(node.operand, values)
            v = node.operand.value  # a signed number (checked at parse time)
            return -v if isinstance(node.op, ast.USub) else v
        if kind is ast.Compare:
            left_node = node.left
            left = self._eval(left_node, values)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, values)
                if not _compare(type(op), left, right, self._label(left_node), self._label(right_node)):
                    return False
                left, left_node = right, right_node
            return True
        if kind is ast.Constant:
            return node.value
        if kind is ast.Name:
            if node.id in self.strings:
                return self.strings[node.id]
            return values[node.id]
        raise _Mismatch("the interlock cannot be evaluated")  # unreachable after _check_tree

    def _truth(self, node: ast.AST, values: dict[str, Any]) -> bool:
        v = self._eval(node, values)
        if type(v) is not bool:
            raise _Mismatch(f"{self._label(node)} is not true/false (it is {v!r})")
        return v

    def _label(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.placeholders.get(node.id) or repr(self.strings.get(node.id, ""))
        if isinstance(node, ast.Constant):
            return repr(node.value)
        return "a condition"


class _Mismatch(Exception):
    pass


def _kind(v: Any) -> str:
    if type(v) is bool:
        return "bool"
    if type(v) in (int, float):
        return "number"
    if type(v) is str:
        return "text"
    return type(v).__name__


def _compare(op: type, a: Any, b: Any, la: str, lb: str) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        raise _Mismatch(f"cannot compare {la} ({ka}) with {lb} ({kb})")
    if op not in (ast.Eq, ast.NotEq) and ka != "number":
        raise _Mismatch(f"{_OPS[op]} needs numbers, not {ka} ({la})")
    if op is ast.Eq:
        return a == b
    if op is ast.NotEq:
        return a != b
    if op is ast.Lt:
        return a < b
    if op is ast.LtE:
        return a <= b
    if op is ast.Gt:
        return a > b
    return a >= b


def _describe(values: Iterable[tuple[str, Any]]) -> str:
    parts = []
    for point, v in values:
        text = ("true" if v else "false") if type(v) is bool else (f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v))
        parts.append(f"{point} = {text}")
    return ", ".join(parts)


def check_interlock(expr: str, point_ids: Iterable[str] | Mapping[str, Any]) -> list[str]:
    """Errors in an interlock for a device with these points (for the site checker).

    point_ids: the device's point ids, or a mapping id -> PointSpec, which also
    checks types (a number point compared with a string, an unknown enum state,
    ordering on a non-number, a bare non-bool point).
    """
    try:
        lock = Interlock.parse(expr)
    except InterlockError as exc:
        return [str(exc)]
    known = set(point_ids)
    errors = [f"unknown point {p!r}" for p in lock.points if p not in known]
    if isinstance(point_ids, Mapping) and not errors:
        errors += _type_errors(lock, point_ids)
    return errors


def _type_errors(lock: Interlock, specs: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []

    def kind_of(node: ast.AST) -> tuple[str, Any]:
        if isinstance(node, ast.Name):
            if node.id in lock.strings:
                return "text", lock.strings[node.id]
            spec = specs.get(lock.placeholders[node.id])
            k = getattr(spec, "kind", None)
            return {"number": "number", "bool": "bool", "enum": "text"}.get(k or "", "?"), spec
        if isinstance(node, ast.Constant):
            return _kind(node.value), node.value
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            return "number", None
        return "bool", None

    for node in ast.walk(lock.tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, a, b in zip(node.ops, operands, operands[1:]):
                (ka, va), (kb, vb) = kind_of(a), kind_of(b)
                la, lb = lock._label(a), lock._label(b)
                if "?" in (ka, kb):
                    continue
                if ka != kb:
                    errors.append(f"compares {la} ({ka}) with {lb} ({kb})")
                elif type(op) not in (ast.Eq, ast.NotEq) and ka != "number":
                    errors.append(f"{_OPS[type(op)]} needs numbers, not {ka} ({la})")
                for spec, other in ((va, vb), (vb, va)):
                    states = getattr(spec, "states", ())
                    if getattr(spec, "kind", None) == "enum" and isinstance(other, str) and states and other not in states:
                        errors.append(f"{spec.id} has no state {other!r} (states: {', '.join(states)})")
        elif isinstance(node, (ast.BoolOp, ast.UnaryOp)) and (isinstance(node, ast.BoolOp) or isinstance(node.op, ast.Not)):
            subs = node.values if isinstance(node, ast.BoolOp) else [node.operand]
            for sub in subs:
                k, _ = kind_of(sub)
                if k not in ("bool", "?"):
                    errors.append(f"{lock._label(sub)} is not true/false; compare it with something")
    if isinstance(lock.tree.body, (ast.Name, ast.Constant)):
        k, _ = kind_of(lock.tree.body)
        if k not in ("bool", "?"):
            errors.append(f"{lock._label(lock.tree.body)} is not true/false; compare it with something")
    return errors


def check_command_interlock(device: Any, command: Any) -> list[str]:
    """Errors in a CommandSpec's interlock for its Device (empty when there is none)."""
    if not command.interlock:
        return []
    return check_interlock(command.interlock, {p.id: p for p in device.points})
