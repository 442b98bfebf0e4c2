"""Lossless columnar encoding of telemetry blocks: numpy transforms, then zstd.

A block is a batch of samples (point id, time, value, quality) sorted by point,
then by time *descending*, so each point's run starts with its newest sample:
the *anchor*. Anchors (one per point) are stored raw in their own small zstd
frame, so "the last value of every point in this block" is read without
decoding the body. The body holds every other sample as differences from the
one after it:

- time: integer milliseconds (or microseconds, or the float64 bit pattern when
  neither round-trips exactly), delta-of-delta, then divided by the greatest
  common divisor of the block (a simulator stepping by 0.1 s gives steps of 100);
- value: per point, the fewest decimals (0..6) at which v == round(v*10^d)/10^d
  holds bit for bit, as integers; else the float64 bit pattern; then delta;
- quality: raw bytes.

Integers are zigzag-encoded and split into byte planes (all high bytes of
small numbers are zero, so a plane of zeros costs zstd nearly nothing). Nothing
is rounded away: decode(encode(x)) == x bit for bit, NaN and -0.0 included.

Points are cut into *buckets* of BUCKET_POINTS consecutive ids, each with its
own pair of frames, so one point's series decodes one bucket, not the block.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import zstandard

BUCKET_SHIFT = 12  # 4096 points per bucket
MAGIC = b"TVB1"
_HEAD = struct.Struct("<4sI")
MAX_DECIMALS = 6
_EXACT_LIMIT = float(2**53)
ZSTD_LEVEL = 3

_cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
_dctx = zstandard.ZstdDecompressor()


# --- integer helpers -------------------------------------------------------------------


def zigzag(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64, copy=False)
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.view(np.uint64)
    return ((u >> np.uint64(1)).view(np.int64)) ^ (-(u & np.uint64(1)).view(np.int64))


def split_planes(u: np.ndarray) -> bytes:
    """uint64 array -> 8 byte planes, concatenated (plane k holds byte k of every value)."""
    return np.ascontiguousarray(u.view(np.uint8).reshape(-1, 8).T).tobytes()


def join_planes(buf: bytes | memoryview, n: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Inverse of split_planes; with lo/hi, only values lo..hi-1 (no copy of the rest)."""
    hi = n if hi is None else hi
    planes = np.frombuffer(buf, np.uint8, count=8 * n).reshape(8, n)[:, lo:hi]
    return np.ascontiguousarray(planes.T).view(np.uint64).reshape(-1)


def seg_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each index in `starts` (sorted, starts[0] == 0)."""
    c = np.cumsum(x)
    if c.size == 0:
        return c
    base = np.zeros(starts.size, c.dtype)
    base[1:] = c[starts[1:] - 1]
    lengths = np.diff(np.append(starts, c.size))
    return c - np.repeat(base, lengths)


# --- time and value to integers -------------------------------------------------------


def time_to_int(t: np.ndarray) -> tuple[np.ndarray, int]:
    """(integers, unit): unit 1000 = ms, 1_000_000 = us, 0 = float64 bits. Always exact."""
    for unit in (1000, 1_000_000):
        ti = np.round(t * unit)
        if np.all(np.abs(ti) < _EXACT_LIMIT) and np.array_equal((ti / unit).view(np.int64), t.view(np.int64)):
            return ti.astype(np.int64), unit
    return t.view(np.int64).copy(), 0


def int_to_time(ti: np.ndarray, unit: int) -> np.ndarray:
    if unit == 0:
        return ti.view(np.float64)
    return ti.astype(np.float64) / unit


def value_scales(v: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per run (point): fewest decimals 0..6 that round-trip every value bit for bit, else -1."""
    scale = np.full(starts.size, -1, np.int8)
    if v.size == 0:
        return scale
    todo = np.ones(starts.size, bool)
    bits = v.view(np.int64)
    finite = np.isfinite(v)
    for d in range(MAX_DECIMALS + 1):
        f = 10.0**d
        with np.errstate(invalid="ignore", over="ignore"):
            vi = np.round(v * f)
            ok = finite & (np.abs(vi) < _EXACT_LIMIT) & (((vi + 0.0) / f).view(np.int64) == bits)  # +0.0: no -0.0
        good = np.logical_and.reduceat(ok, starts) & todo
        scale[good] = d
        todo &= ~good
        if not todo.any():
            break
    return scale


def value_to_int(v: np.ndarray, scale_per_sample: np.ndarray) -> np.ndarray:
    out = v.view(np.int64).copy()
    exact = scale_per_sample >= 0
    if exact.any():
        f = 10.0 ** scale_per_sample[exact].astype(np.float64)
        out[exact] = np.round(v[exact] * f).astype(np.int64)
    return out


def int_to_value(vi: np.ndarray, scale_per_sample: np.ndarray) -> np.ndarray:
    out = vi.view(np.float64).copy()
    exact = scale_per_sample >= 0
    if exact.any():
        f = 10.0 ** scale_per_sample[exact].astype(np.float64)
        out[exact] = vi[exact].astype(np.float64) / f
    return out


# --- blocks -------------------------------------------------------------------------------


def sort_block(ids: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray):
    """Sorted by id ascending, then time descending (newest first); ties keep the later arrival first."""
    n = ids.size
    order = np.lexsort((-np.arange(n), -t, ids)) if n else np.zeros(0, np.int64)
    return ids[order], t[order], v[order], q[order]


def encode_block(ids: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray, meta: dict | None = None) -> bytes:
    ids = np.asarray(ids, np.int32)
    t = np.asarray(t, np.float64)
    v = np.asarray(v, np.float64)
    q = np.asarray(q, np.uint8)
    ids, t, v, q = sort_block(ids, t, v, q)
    ti, unit = time_to_int(t)
    tbase = int(ti.min()) if ti.size else 0
    header = {
        "n": int(ids.size),
        "tmin": float(t.min()) if t.size else 0.0,
        "tmax": float(t.max()) if t.size else 0.0,
        "unit": unit,
        "tbase": tbase,
        "buckets": [],
        **(meta or {}),
    }
    frames: list[bytes] = []
    offset = 0
    bucket_of = ids >> BUCKET_SHIFT
    cuts = np.flatnonzero(np.diff(bucket_of)) + 1
    bounds = np.concatenate(([0], cuts, [ids.size])) if ids.size else np.zeros(1, np.int64)
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        anchors, body, info = _encode_bucket(ids[a:b], ti[a:b] - tbase, v[a:b], q[a:b])
        ca, cb = _cctx.compress(anchors), _cctx.compress(body)
        info.update(bucket=int(bucket_of[a]), a=[offset, len(ca)], b=[offset + len(ca), len(cb)])
        offset += len(ca) + len(cb)
        frames += [ca, cb]
        header["buckets"].append(info)
    head = json.dumps(header, separators=(",", ":")).encode()
    return _HEAD.pack(MAGIC, len(head)) + head + b"".join(frames)


def _encode_bucket(ids, ti, v, q):
    n = ids.size
    uniq, starts, counts = np.unique(ids, return_index=True, return_counts=True)
    p = uniq.size
    is_start = np.zeros(n, bool)
    is_start[starts] = True
    scale = value_scales(v, starts)
    vi = value_to_int(v, np.repeat(scale, counts))
    # time: delta (to the newer sample) then delta of delta, zero at run starts
    d = np.diff(ti, prepend=ti[:1])
    d[is_start] = 0
    dd = np.diff(d, prepend=d[:1])
    body_dd = dd[~is_start]
    g = int(np.gcd.reduce(np.abs(body_dd))) if body_dd.size else 1
    g = max(g, 1)
    dv = np.diff(vi, prepend=vi[:1])
    body = b"".join([
        split_planes(zigzag(body_dd // g)),
        split_planes(zigzag(dv[~is_start])),
        q[~is_start].tobytes(),
    ])
    anchors = b"".join([
        np.diff(uniq, prepend=0).astype(np.int32).tobytes(),
        counts.astype(np.int32).tobytes(),
        scale.tobytes(),
        split_planes(zigzag(ti[starts])),
        split_planes(zigzag(vi[starts])),
        q[starts].tobytes(),
    ])
    return anchors, body, {"n": int(n), "p": int(p), "g": g}


class Block:
    """A decoded view of one block file's bytes; frames are decompressed on demand."""

    def __init__(self, data: bytes):
        magic, hlen = _HEAD.unpack_from(data, 0)
        if magic != MAGIC:
            raise ValueError("not a twinview history block")
        self.header = json.loads(data[_HEAD.size : _HEAD.size + hlen])
        self.payload = memoryview(data)[_HEAD.size + hlen :]
        self.unit = self.header["unit"]
        self.tbase = self.header["tbase"]

    def _frame(self, span) -> bytes:
        off, ln = span
        return _dctx.decompress(self.payload[off : off + ln])

    def _anchors(self, info):
        p = info["p"]
        raw = self._frame(info["a"])
        o = 0
        uniq = np.cumsum(np.frombuffer(raw, np.int32, p, o)).astype(np.int32)
        o += 4 * p
        counts = np.frombuffer(raw, np.int32, p, o)
        o += 4 * p
        scale = np.frombuffer(raw, np.int8, p, o)
        o += p
        ta = unzigzag(join_planes(raw[o : o + 8 * p], p)) + self.tbase
        o += 8 * p
        va = unzigzag(join_planes(raw[o : o + 8 * p], p))
        o += 8 * p
        qa = np.frombuffer(raw, np.uint8, p, o)
        return uniq, counts, scale, ta, va, qa

    def anchors(self):
        """(ids, t, v, q): the newest sample of every point in the block."""
        parts = []
        for info in self.header["buckets"]:
            uniq, _, scale, ta, va, qa = self._anchors(info)
            parts.append((uniq, int_to_time(ta, self.unit), int_to_value(va, scale), qa))
        return _concat(parts)

    def decode(self, bucket: int | None = None, point: int | None = None):
        """(ids, t, v, q) of the whole block, one bucket, or one point; sorted by id, newest first."""
        parts = []
        for info in self.header["buckets"]:
            if bucket is not None and info["bucket"] != bucket:
                continue
            parts.append(self._decode_bucket(info, point))
        return _concat(parts)

    def _decode_bucket(self, info, point):
        uniq, counts, scale, ta, va, qa = self._anchors(info)
        n, g = info["n"], info["g"]
        nb = n - uniq.size
        raw = self._frame(info["b"])
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        if point is not None:
            k = np.searchsorted(uniq, point)
            if k >= uniq.size or uniq[k] != point:
                return _empty()
            # body positions of this run: run k holds counts[k]-1 body samples
            bstart = int(starts[k] - k)
            c = int(counts[k])
            lo, hi = bstart, bstart + c - 1
            sel_uniq, sel_counts, sel_scale = uniq[k : k + 1], counts[k : k + 1], scale[k : k + 1]
            sel_ta, sel_va, sel_qa = ta[k : k + 1], va[k : k + 1], qa[k : k + 1]
        else:
            lo, hi = 0, nb
            sel_uniq, sel_counts, sel_scale, sel_ta, sel_va, sel_qa = uniq, counts, scale, ta, va, qa
        dd = unzigzag(join_planes(raw[: 8 * nb], nb, lo, hi)) * g
        dv = unzigzag(join_planes(raw[8 * nb : 16 * nb], nb, lo, hi))
        qb = np.frombuffer(raw, np.uint8, nb, 16 * nb)[lo:hi]
        m = int(sel_counts.sum())
        rstarts = np.concatenate(([0], np.cumsum(sel_counts)[:-1])).astype(np.int64)
        is_start = np.zeros(m, bool)
        is_start[rstarts] = True
        full_dd = np.zeros(m, np.int64)
        full_dd[~is_start] = dd
        full_dv = np.zeros(m, np.int64)
        full_dv[~is_start] = dv
        d = seg_cumsum(full_dd, rstarts)
        ti = seg_cumsum(d, rstarts) + np.repeat(sel_ta, sel_counts)
        vi = seg_cumsum(full_dv, rstarts) + np.repeat(sel_va, sel_counts)
        q = np.empty(m, np.uint8)
        q[is_start] = sel_qa
        q[~is_start] = qb
        return (
            np.repeat(sel_uniq, sel_counts),
            int_to_time(ti, self.unit),
            int_to_value(vi, np.repeat(sel_scale, sel_counts)),
            q,
        )


def _empty():
    return (np.zeros(0, np.int32), np.zeros(0), np.zeros(0), np.zeros(0, np.uint8))


def _concat(parts):
    if not parts:
        return _empty()
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(cols) for cols in zip(*parts))
