"""`twinview detect DATA.csv [--train NORMAL.csv] --out OUT.csv`: anomaly scores for any recording, offline.

The same detector as the live twin (twinview.twin.anomaly), fed the file's rows
in order: one device whose sensors are the file's numeric columns. Causal: a
row's output depends on that row and the rows before it only.
"""

from __future__ import annotations

import csv
import io
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

DEFAULT_TRAIN_ROWS = 300
LABEL_COLUMNS = ("anomaly", "changepoint")  # our own output names: a labelled file, not sensors


class InputError(Exception):
    """Bad input: the message is one line for the user."""


@dataclass
class Table:
    path: str
    time_name: str
    times: list[str]  # as written in the file
    seconds: np.ndarray  # epoch seconds
    names: list[str]  # sensor columns
    X: np.ndarray  # rows x sensors, NaN where a cell is empty
    notes: list[str] = field(default_factory=list)


def _parse_time(text: str) -> float:
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _column(values: list[str], decimal_comma: bool) -> np.ndarray | None:
    """The column as floats (empty cells NaN), or None if some cell is not a number."""
    try:
        return np.array(values, dtype=float)
    except ValueError:
        pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        v = v.strip()
        if not v:
            out[i] = np.nan
            continue
        try:
            out[i] = float(v.replace(",", ".") if decimal_comma else v)
        except ValueError:
            return None
    return out


def read_table(path: str | Path, time_column: str | None = None) -> Table:
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\0" in text:
        raise InputError(f"{path}: not a text file")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: empty file")
    head = lines[0]
    delim = ";" if head.count(";") > head.count(",") else ","
    header = [h.strip() for h in next(csv.reader([head], delimiter=delim))]
    if time_column is not None and time_column not in header:
        raise InputError(f"{path}: no column {time_column!r} (columns: {', '.join(header)})")
    fast = _read_fast(text, delim, header, header.index(time_column) if time_column else 0)
    if fast is not None:
        return Table(path, *fast)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    body = rows[1:]
    if not body:
        raise InputError(f"{path}: a header and no rows")
    width = len(header)
    for i, r in enumerate(body):
        if len(r) != width:
            if not any(c.strip() for c in r):
                raise InputError(f"{path}: line {i + 2} is blank inside the data")
            raise InputError(f"{path}: line {i + 2} has {len(r)} fields, the header has {width} (ragged rows)")
    if time_column is None:
        t_index = 0
    elif time_column in header:
        t_index = header.index(time_column)
    else:
        raise InputError(f"{path}: no column {time_column!r} (columns: {', '.join(header)})")
    cols = list(zip(*body))
    times = [t.strip() for t in cols[t_index]]
    try:
        seconds = np.array(times, dtype=float)
    except ValueError:
        seconds = np.empty(len(times))
        for i, t in enumerate(times):
            try:
                seconds[i] = _parse_time(t)
            except (ValueError, OverflowError):
                raise InputError(f"{path}: line {i + 2}: cannot read the time {t!r} in column {header[t_index]!r} "
                                 "(ISO 8601 or epoch seconds)") from None
    notes: list[str] = []
    names, columns, skipped = [], [], []
    for j, name in enumerate(header):
        if j == t_index:
            continue
        if name.lower() in LABEL_COLUMNS:
            notes.append(f"column {name!r} is a label, not a sensor: ignored")
            continue
        col = _column(list(cols[j]), decimal_comma=delim == ";")
        if col is None or np.isnan(col).all():
            skipped.append(name)
            continue
        names.append(name)
        columns.append(col)
    if skipped:
        notes.append(f"not numeric, ignored: {', '.join(repr(s) for s in skipped)}")
    if not names:
        raise InputError(f"{path}: no numeric column besides the time {header[t_index]!r}")
    X = np.stack(columns, axis=1)
    X[~np.isfinite(X)] = np.nan
    return Table(path, header[t_index], times, seconds, names, X, notes)


def _read_fast(text: str, delim: str, header: list[str], t_index: int):
    """The common case in C (numpy's parser): every cell a plain number but the time. None: use the slow path."""
    if any(name.lower() in LABEL_COLUMNS for name in header) or len(header) < 2:
        return None
    sensors = [j for j in range(len(header)) if j != t_index]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the slow path says it in one line
            X = np.loadtxt(io.StringIO(text), delimiter=delim, skiprows=1, usecols=sensors, comments=None, ndmin=2,
                           dtype=float, quotechar='"')
            times = np.loadtxt(io.StringIO(text), delimiter=delim, skiprows=1, usecols=[t_index], comments=None,
                               ndmin=1, dtype=str, quotechar='"')
    except (ValueError, IndexError):
        return None
    if len(times) == 0 or len(times) != len(X) or not np.isfinite(X).all():
        return None
    times = [t.strip() for t in times.tolist()]
    try:
        seconds = np.array(times, dtype=float)
    except ValueError:
        try:
            seconds = np.array([_parse_time(t) for t in times])
        except (ValueError, OverflowError):
            return None
    return header[t_index], times, seconds, [header[j] for j in sensors], X, []


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def detect_table(data: Table, train: Table | None, train_rows: int = DEFAULT_TRAIN_ROWS, say=None):
    """Scores for every row of `data`; fitted on `train`, else on data's first `train_rows` rows."""
    from twinview.twin.anomaly import Detector, TooLittleData
    from twinview.twin.anomaly.detector import describe

    say = say or (lambda line: None)
    p = len(data.names)
    if train is not None:
        missing = [n for n in data.names if n not in train.names]
        if missing:
            raise InputError(f"{train.path}: lacks the sensor column(s) {', '.join(missing)} of {data.path}")
        Xt = train.X[:, [train.names.index(n) for n in data.names]]
        detector = Detector(p)
        try:
            detector.fit(Xt)
        except TooLittleData as exc:
            raise InputError(f"{train.path}: too little data to learn from: {exc}") from None
        say(f"learnt normal behaviour from {train.path}: {len(Xt):,} rows, "
            f"{_duration(train.seconds[-1] - train.seconds[0])}; {describe(detector, 0, data.names)}")
        return detector.update(data.X)
    detector = Detector(p, warmup=train_rows)
    w = detector.warmup
    n = len(data.X)
    if n > w:
        span = _duration(data.seconds[w - 1] - data.seconds[0])
        say(f"learning normal behaviour from the first {w:,} rows of {data.path} "
            f"({data.times[0]} to {data.times[w - 1]}, {span}; change with --train-rows or --train): "
            "those rows get no score")
    else:
        say(f"too little data to judge: {n:,} rows, and the model learns from the first {w:,} "
            "(--train-rows, or --train NORMAL.csv): no row is scored")
    try:
        scores = detector.update(data.X)
    except TooLittleData as exc:
        raise InputError(f"{data.path}: too little data to learn from in the first {w} rows: {exc}") from None
    if detector.ready:
        say(f"model: {describe(detector, 0, data.names)}")
    return scores


def write_scores(out: str | Path, data: Table, scores) -> None:
    score = [("" if s != s else f"{s:.4f}") for s in scores.score.tolist()]
    lines = [f"{data.time_name},score,anomaly,changepoint"]
    lines += [f"{t},{s},{a},{c}" for t, s, a, c in zip(data.times, score, scores.anomaly.tolist(),
                                                           scores.changepoint.tolist())]
    try:
        Path(out).write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None


def run_detect(data_path, out, train_path=None, time_column=None, train_rows=DEFAULT_TRAIN_ROWS, quiet=False) -> int:
    def say(line: str) -> None:
        if not quiet:
            print(f"detect: {line}", file=sys.stderr)

    try:
        data = read_table(data_path, time_column)
        for note in data.notes:
            say(f"{data.path}: {note}")
        train = None
        if train_path:
            train = read_table(train_path, time_column)
            for note in train.notes:
                say(f"{train.path}: {note}")
        scores = detect_table(data, train, train_rows, say)
        write_scores(out, data, scores)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = len(data.X)
    judged = int(scores.ready.sum())
    flagged = int(scores.anomaly.sum())
    share = f" ({flagged / judged:.1%} of scored rows)" if judged else ""
    say(f"{n:,} rows x {len(data.names)} sensors: {judged:,} scored, {flagged:,} anomalous{share}, "
        f"{int(scores.changepoint.sum())} changepoint(s); wrote {out}")
    return 0


def cmd_detect(args) -> int:
    if args.train_rows < 1:
        print("error: --train-rows must be at least 1", file=sys.stderr)
        return 2
    return run_detect(args.data, args.out, args.train, args.time_column, args.train_rows)


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="anomaly scores for a CSV recording (offline, causal, the live twin's detector)")
    p.add_argument("data", metavar="DATA.csv", help="time column and numeric sensor columns; ',' or ';' separated")
    p.add_argument("--train", metavar="NORMAL.csv", help="a recording of normal operation to learn from "
                   "(default: the first --train-rows rows of DATA)")
    p.add_argument("--out", required=True, metavar="OUT.csv", help="time, score, anomaly (0/1), changepoint (0/1)")
    p.add_argument("--time-column", metavar="NAME", help="the time column (default: the first); ISO 8601 or epoch s")
    p.add_argument("--train-rows", type=int, default=DEFAULT_TRAIN_ROWS, metavar="N",
                   help=f"without --train: learn from DATA's first N rows (default {DEFAULT_TRAIN_ROWS})")
    p.epilog = "score > 1 is anomalous; rows the model learns from have an empty score. exit codes: 0 ok, 2 bad input"
    p.set_defaults(func=cmd_detect)
