"""Blocks decode to exactly what was encoded, bit for bit, whatever the values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twinview.history import codec


def _bits(a):
    return a.view(np.int64) if a.dtype == np.float64 else a


def _same(a, b):
    return all(np.array_equal(_bits(x), _bits(y)) for x, y in zip(a, b))


samples = st.lists(
    st.tuples(
        st.integers(0, 9000),
        st.one_of(st.floats(1.6e9, 1.9e9), st.integers(1_600_000_000_000, 1_900_000_000_000).map(lambda ms: ms / 1000)),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(lambda x: x / 100),
                  st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e300, -1e-300])),
        st.integers(0, 4),
    ),
    min_size=1, max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_round_trip_is_exact(rows):
    ids = np.array([r[0] for r in rows], np.int32)
    t = np.array([r[1] for r in rows], np.float64)
    v = np.array([r[2] for r in rows], np.float64)
    q = np.array([r[3] for r in rows], np.uint8)
    block = codec.Block(codec.encode_block(ids, t, v, q))
    want = codec.sort_block(ids, t, v, q)
    assert _same(block.decode(), want)
    # anchors: the newest sample of each point
    a_ids, a_t, a_v, a_q = block.anchors()
    assert a_ids.tolist() == sorted(set(ids.tolist()))
    for k, pid in enumerate(a_ids.tolist()):
        m = want[0] == pid
        assert a_t[k] == want[1][m][0] and _bits(np.array([a_v[k]]))[0] == _bits(want[2][m][:1])[0]
    # one point alone
    pid = int(ids[0])
    one = block.decode(bucket=pid >> codec.BUCKET_SHIFT, point=pid)
    m = want[0] == pid
    assert _same(one, tuple(c[m] for c in want))


def test_typical_telemetry_is_small():
    """Simulator-like values (4 significant digits, ms times, 10 s period) stay well under 4 bytes/sample."""
    rng = np.random.default_rng(0)
    points, steps = 2000, 30
    ids = np.tile(np.arange(points, dtype=np.int32), steps)
    t = np.repeat(1.7e9 + np.arange(steps) * 10.0, points) + np.round(rng.uniform(0, 1, ids.size), 1)
    base = rng.uniform(10, 90, points)
    v = np.round(np.tile(base, steps) + rng.normal(0, 0.05, ids.size).cumsum() * 0.01, 2)
    data = codec.encode_block(ids, t, v, np.zeros(ids.size, np.uint8))
    assert len(data) / ids.size < 4.0
    assert _same(codec.Block(data).decode(), codec.sort_block(ids, t, v, np.zeros(ids.size, np.uint8)))
