"""An online, per-device anomaly detector over a matrix of numeric sensors.

The model of normal behaviour, per device, learnt from a window of normal
operation:

* robust standardisation: each sensor's median and MAD scale (a sensor that
  never moves in the training window carries no information and is ignored);
* PCA on the standardised sensors: Hotelling's T² inside the principal
  subspace (the sensors move together, but too far) and Q, the squared
  prediction error outside it (the sensors no longer move together), each
  sensor's residual weighed by its spread in training;
* the same weighted residual per sensor (one tight relation breaking);
* roughness: per sensor, an EWMA of the squared step between samples against
  its training level, which rises with growing noise, spikes and vibration and
  falls to nothing when a sensor sticks.

T², Q and the residuals are smoothed causally (EWMA: the score at t uses samples
up to t), each statistic is divided by its 99% quantile (T² by `t2_weight` times
it), and their maximum by its own `quantile` (default 99.5%), all measured on
training data the model had not seen (blocks of the window scored by a model of
the other blocks). So `score > 1` is the alarm, and on data like the training
data about 0.5% of samples raise it.

Drift: the model knows variation up to its training window's length, and follows
slower change at that pace: every epoch each sensor's centre moves toward the mean
of its readings whose own residual and roughness (and the row's Q) were below the
alarm, with a time constant of `horizon` windows. A sensor under suspicion is frozen
while the others follow the plant; `max_shift` can cap the distance (off by default).

Changepoints: a two-state CUSUM on log(score) flags the row where the device
is judged to have entered an abnormal regime, and the row where it left it.

Before a device is fitted its score is NaN and `ready` is False: the detector
says it has too little data to judge rather than guess.

`FleetDetector` holds every device with the same number of sensors as arrays
(device axis first) and scores one row per changed device per frame with a few
vector operations; `Detector` is the same code for one device, taking rows one
at a time or in blocks (the offline runner), with identical results either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from scipy.special import gammaincinv


class TooLittleData(ValueError):
    """The training data cannot support a model (too few rows, or no sensor varies)."""


@dataclass(frozen=True)
class DetectorConfig:
    variance: float = 0.99  # share of the standardised variance the principal components keep
    alpha: float = 0.15  # EWMA weight of a new T² / Q value (score smoothing, ~12 samples)
    rough_alpha: float = 0.05  # EWMA weight of a new squared step (noise and stuck window, ~40 samples)
    component_quantile: float = 0.99  # each statistic is divided by this quantile on held-out normal data
    quantile: float = 0.995  # ... and their maximum by this one,
    margin: float = 1.0  # times this (cross-calibration already errs on the high side)
    folds: int = 8  # the training window is cut into this many blocks; even ones score odd ones and back
    min_rows: int = 30  # a fit needs at least this many rows, and 4 per sensor
    epoch: int = 256  # at most this many rows between two adaptations of the centre (1/8 of the window)
    horizon: float = 1.0  # the centre's time constant, in training-window lengths
    max_shift: float = math.inf  # the centre stays within this many scales of the trained one
    gate: float = 1.0  # readings whose own statistics are below this share of the alarm feed the adaptation
    gate_share: float = 0.75  # a sensor adapts only if this share of the epoch's readings passed the gate
    t2_weight: float = 3.0  # T² alone (an unfamiliar operating point) is weaker evidence than a broken relation
    rough_cap: float = 25.0  # a squared step counts as at most this many times its training level
    rough_tail: float = 0.001  # roughness thresholds are at least this far into the chi-square tails
    cusum_h: float = 3.0  # CUSUM decision interval on log(score)
    residual_floor: float = 0.02  # a sensor's residual spread counts as at least this (standardised units)
    zclip: float = 1e3  # standardised values are clipped to this (no overflow on wild input)

    def rows_needed(self, n_sensors: int) -> int:
        return max(self.min_rows, 4 * n_sensors)


@dataclass
class Scores:
    """One entry per scored row: score (NaN: cannot judge yet), anomaly, changepoint, ready."""

    score: np.ndarray
    anomaly: np.ndarray
    changepoint: np.ndarray
    ready: np.ndarray

    @staticmethod
    def concat(parts: list["Scores"]) -> "Scores":
        if not parts:
            e = np.zeros(0)
            return Scores(e, e.astype(np.int8), e.astype(np.int8), e.astype(bool))
        return Scores(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("score", "anomaly", "changepoint", "ready")))


def _ewma(x: np.ndarray, prev: np.ndarray, a: float) -> np.ndarray:
    """y_t = (1-a) y_{t-1} + a x_t along axis 1; prev is y_{-1} per device (x's shape without axis 1)."""
    if x.shape[1] == 1:
        return ((1.0 - a) * prev)[:, None] + a * x
    y, _ = lfilter([a], [1.0, a - 1.0], x, axis=1, zi=((1.0 - a) * prev)[:, None])
    return y


class FleetDetector:
    """Anomaly scores for `n_devices` devices of `n_sensors` numeric sensors each, as arrays."""

    def __init__(self, n_devices: int, n_sensors: int, config: DetectorConfig | None = None, warmup: int | None = None):
        """warmup: learn each device from its first `warmup` rows (None: only from `fit_device`)."""
        if n_sensors < 1:
            raise ValueError("a device needs at least one sensor")
        self.config = cfg = config or DetectorConfig()
        self.n_devices, self.n_sensors = D, p = n_devices, n_sensors
        self.warmup = None if warmup is None else max(int(warmup), cfg.rows_needed(p))
        K = max(p - 1, 1)
        self.fitted = np.zeros(D, bool)
        self.c0 = np.zeros((D, p))
        self.c = np.zeros((D, p))
        self.s = np.ones((D, p))
        self.P = np.zeros((D, p, K))
        self.inv_lam = np.zeros((D, K))
        self.wq = np.ones((D, p))  # weight of each sensor's squared residual in Q
        self.base = np.ones((D, p))  # training mean squared step, standardised units
        self.q = np.ones((D, 2))  # T², Q component quantiles
        self.q_up = np.ones((D, p))
        self.q_down = np.ones((D, p))
        self.tau = np.ones(D)
        self.ew = np.zeros((D, 2))  # smoothed T², Q
        self.ew_res = np.ones((D, p))  # smoothed weighted squared residual per sensor
        self.q_res = np.ones((D, p))
        self.rough = np.ones((D, p))
        self.zprev = np.zeros((D, p))
        self.fresh = np.ones(D, bool)  # no previous row: the first step counts as zero
        self.cusum = np.zeros(D)
        self.abnormal = np.zeros(D, bool)
        self.ep_rows = np.zeros(D, np.int64)
        self.epoch = np.full(D, cfg.epoch, np.int64)  # rows per adaptation epoch
        self.rate = np.zeros(D)  # share of the way the centre moves per epoch
        self.ep_ok = np.zeros((D, p), np.int64)
        self.ep_sum = np.zeros((D, p))
        self.components = np.zeros(D, np.int64)
        self.ignored: list[list[int]] = [[] for _ in range(D)]
        self._buffers: dict[int, list[np.ndarray]] = {}

    # --- learning -------------------------------------------------------------------------

    def fit_device(self, i: int, X: np.ndarray, continue_state: bool = False) -> None:
        """Learn device i's normal behaviour from X (rows x sensors; NaN: missing).

        continue_state: the next rows follow X directly (the smoothing and the step
        between samples carry on); otherwise they start fresh, as from another recording.

        Thresholds come from cross-calibration: X is cut into `folds` blocks in time; a
        model of the even blocks scores the odd ones and back, so thresholds reflect data
        the model has not seen, from all over the window (a window too short to cut is
        scored in-sample after a burn-in). The model kept is fitted on all of X.
        """
        cfg, p = self.config, self.n_sensors
        X = np.asarray(X, float).reshape(-1, p)
        X = X[~np.all(np.isnan(X), axis=1)]
        n = len(X)
        need = cfg.rows_needed(p)
        if n < need:
            raise TooLittleData(f"{n} training rows: at least {need} are needed for {p} sensor(s)")
        blocks = min(cfg.folds, n // need) if n >= 2 * need else 0
        block = np.arange(n) * max(blocks, 1) // n
        folds = [block % 2 == 0, block % 2 == 1] if blocks >= 2 else [np.ones(n, bool)]
        stats = []
        for held in folds:
            fit = X[~held] if blocks >= 2 else X
            self._set_model(i, fit)
            for b in np.unique(block[held]):  # each held-out block scored on its own, after a burn-in
                rows = X[block == b]
                burn = min(len(rows) // 4, int(1 / cfg.rough_alpha))
                stats.append([a[0, burn:] for a in self._raw(np.array([i]), rows[None])])
                self._reset_smoothing(i)
        t2, q, ratio, rq = (np.concatenate(parts_) for parts_ in zip(*stats))
        self._set_model(i, X)
        cq = cfg.component_quantile
        self.q[i] = np.maximum([np.quantile(t2, cq), np.quantile(q, cq)], 1e-9)
        self.q_res[i] = np.maximum(np.quantile(rq, cq, axis=0), 1e-9)
        # A smoothed squared step of white noise is roughly chi-square with nu = (2 - a) / (1.5 a) degrees
        # of freedom (1.5: successive steps share a sample): its quantiles bound the empirical ones,
        # which a short window estimates poorly (the EWMA is slow).
        nu = (2.0 - cfg.rough_alpha) / (1.5 * cfg.rough_alpha)
        lo, hi = 2.0 * gammaincinv(nu / 2.0, [cfg.rough_tail, 1.0 - cfg.rough_tail]) / nu  # chi-square quantiles
        self.q_up[i] = np.maximum(np.quantile(ratio, cq, axis=0), hi)
        self.q_down[i] = np.minimum(np.quantile(ratio, 1.0 - cq, axis=0), lo)
        dev = np.array([i])
        combined = self._combine(dev, t2[None], q[None], ratio[None], rq[None])[0]
        self.tau[i] = cfg.margin * max(float(np.quantile(combined, cfg.quantile)), 1.0)
        if continue_state:
            self._raw(dev, X[None])  # the smoothing carries on from the window's last rows
        else:
            self.ew[i] = (np.median(t2), np.median(q))
            self.ew_res[i] = np.median(rq, axis=0)
            self.rough[i] = self.base[i]
            self.fresh[i] = True
        # The model knows variation on time scales up to its window: slower change is followed at that
        # pace (time constant `horizon` windows), in epochs of an eighth of the window at most.
        self.epoch[i] = int(np.clip(n // 8, 8, cfg.epoch))
        self.rate[i] = min(self.epoch[i] / (cfg.horizon * n), 0.5)
        self.cusum[i], self.abnormal[i] = 0.0, False
        self.ep_rows[i] = self.ep_ok[i] = 0
        self.ep_sum[i] = 0.0
        self.fitted[i] = True
        self._buffers.pop(i, None)

    def _set_model(self, i: int, X: np.ndarray) -> None:
        """Centre, scales, principal components, residual weights and roughness of X; smoothing reset."""
        cfg, p = self.config, self.n_sensors
        med = np.nanmedian(X, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(X - med), axis=0)
        sd = np.nanstd(X, axis=0)
        s = np.where(mad > 0, mad, sd)
        active = np.isfinite(s) & (s > 0) & np.isfinite(med)
        if not active.any():
            raise TooLittleData("no sensor varies in the training data")
        s = np.where(active, s, np.inf)
        med = np.where(np.isfinite(med), med, 0.0)
        Z = np.nan_to_num(np.clip((X - med) / s, -6.0, 6.0))
        cov = Z.T @ Z / len(Z)
        lam, vec = np.linalg.eigh(cov)
        lam, vec = lam[::-1], vec[:, ::-1]
        n_active = int(active.sum())
        total = float(lam[:n_active].sum()) or 1.0
        k = int(np.searchsorted(np.cumsum(lam[:n_active]) / total, cfg.variance) + 1)
        k = max(1, min(k, n_active - 1 if n_active > 1 else 1))
        self.P[i] = 0.0
        self.P[i, :, :k] = vec[:, :k]
        self.inv_lam[i] = 0.0
        self.inv_lam[i, :k] = 1.0 / np.maximum(lam[:k], 1e-3 * total / n_active)
        self.components[i] = k
        # Q weighs each sensor's residual by its training spread: a tight relation (pressure to speed and
        # flow) breaking counts as much as a loose one (a lagging temperature) wandering.
        res = Z - Z @ self.P[i] @ self.P[i].T
        self.wq[i] = 1.0 / np.maximum(np.sqrt((res**2).mean(axis=0)), cfg.residual_floor) ** 2
        self.ignored[i] = [j for j in range(p) if not active[j]]
        dz = np.diff(Z, axis=0)
        self.base[i] = np.maximum((dz**2).mean(axis=0) if len(dz) else 1.0, 1e-6)
        self.c0[i] = self.c[i] = med
        self.s[i] = s
        self.q[i], self.q_up[i], self.q_down[i], self.q_res[i], self.tau[i] = 1.0, 1.0, 1.0, 1.0, 1.0
        self._reset_smoothing(i)

    def _reset_smoothing(self, i: int) -> None:
        k = int(self.components[i])
        active = np.isfinite(self.s[i])
        self.ew[i] = (k, float(active.sum() - k))
        self.ew_res[i] = np.where(active, 1.0, 0.0)
        self.rough[i] = self.base[i]
        self.fresh[i] = True

    # --- scoring ------------------------------------------------------------------------

    def _raw(self, devs: np.ndarray, X: np.ndarray):
        """T², Q (smoothed) and per-sensor roughness ratios for X (n devices x T rows x p); advances state."""
        cfg = self.config
        z = (X - self.c[devs, None, :]) / self.s[devs, None, :]
        z = np.nan_to_num(np.clip(z, -cfg.zclip, cfg.zclip))
        t = np.einsum("ntp,npk->ntk", z, self.P[devs])
        t2 = np.einsum("ntk,nk->nt", t * t, self.inv_lam[devs])
        res = z - np.einsum("ntk,npk->ntp", t, self.P[devs])
        rq = res * res * self.wq[devs, None, :]
        q = rq.sum(axis=2)
        prev = np.where(self.fresh[devs, None], z[:, 0], self.zprev[devs])
        step = np.diff(z, axis=1, prepend=prev[:, None, :])
        # Each squared step counts as at most rough_cap x its training level: one wild reading raises the
        # roughness for a while, not for minutes after the plant is back to normal.
        rough = _ewma(np.minimum(step * step, cfg.rough_cap * self.base[devs, None, :]), self.rough[devs],
                      cfg.rough_alpha)
        ew = np.stack([_ewma(t2, self.ew[devs, 0], cfg.alpha), _ewma(q, self.ew[devs, 1], cfg.alpha)], axis=-1)
        self.ew[devs] = ew[:, -1]
        rq = _ewma(rq, self.ew_res[devs], cfg.alpha)
        self.ew_res[devs] = rq[:, -1]
        self.rough[devs] = rough[:, -1]
        self.zprev[devs] = z[:, -1]
        self.fresh[devs] = False
        base = self.base[devs, None, :]
        ratio = (rough + 0.01 * base) / (1.01 * base)
        return ew[..., 0], ew[..., 1], ratio, rq

    def _combine(self, devs, t2, q, ratio, rq) -> np.ndarray:
        res = (rq / self.q_res[devs, None, :]).max(axis=2)
        up = (ratio / self.q_up[devs, None, :]).max(axis=2)
        down = (self.q_down[devs, None, :] / ratio).max(axis=2)
        return np.maximum.reduce([t2 / (self.q[devs, None, 0] * self.config.t2_weight), q / self.q[devs, None, 1], res, up, down])

    def _advance(self, devs: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score X (n fitted devices x T rows x p); no device crosses an epoch boundary inside X."""
        cfg = self.config
        t2, q, ratio, rq = self._raw(devs, X)
        tau = self.tau[devs, None]
        score = self._combine(devs, t2, q, ratio, rq) / tau
        anomaly = score > 1.0
        # Two-state CUSUM on log(score): into an abnormal regime, and back out of it.
        x = np.clip(np.log(np.maximum(score, 1e-6)), -5.0, 5.0)
        cp = np.zeros(score.shape, np.int8)
        h = cfg.cusum_h
        S, A = self.cusum[devs].tolist(), self.abnormal[devs].tolist()
        for j, row in enumerate(x.tolist()):
            s_, a_ = S[j], A[j]
            for t, v in enumerate(row):
                s_ = s_ - v if a_ else s_ + v
                if s_ < 0.0:
                    s_ = 0.0
                elif s_ > h:
                    cp[j, t], a_, s_ = 1, not a_, 0.0
            S[j], A[j] = s_, a_
        self.cusum[devs], self.abnormal[devs] = S, A
        # Slow adaptation of the centre, sensor by sensor: a sensor's reading counts when its own
        # residual and roughness are below the alarm, so a fault in one sensor freezes that sensor's
        # centre while the others keep following the plant's slow drift.
        tau3 = tau[:, :, None] * cfg.gate
        ok = ((rq / self.q_res[devs, None, :] < tau3) & (ratio / self.q_up[devs, None, :] < tau3)
              & (self.q_down[devs, None, :] / ratio < tau3) & (q / self.q[devs, None, 1] < tau * cfg.gate)[:, :, None])
        z = np.nan_to_num((X - self.c[devs, None, :]) / self.s[devs, None, :])
        self.ep_sum[devs] += np.where(ok, z, 0.0).sum(axis=1)
        self.ep_ok[devs] += ok.sum(axis=1)
        self.ep_rows[devs] += X.shape[1]
        return score, anomaly, cp

    def _end_epochs(self, devs: np.ndarray) -> None:
        cfg = self.config
        done = devs[self.ep_rows[devs] >= self.epoch[devs]]
        if not len(done):
            return
        # A sensor adapts only if it passed in `gate_share` of the epoch's rows.
        good = self.ep_ok[done] >= cfg.gate_share * self.ep_rows[done, None]
        mean = self.ep_sum[done] / np.maximum(self.ep_ok[done], 1)
        s = self.s[done]
        finite = np.isfinite(s) & good
        s0 = np.where(finite, s, 0.0)
        step = np.where(finite, self.rate[done, None] * mean * s0, 0.0)
        c = self.c[done] + step
        if math.isfinite(cfg.max_shift):
            c0, lim = self.c0[done], cfg.max_shift * s0
            c = np.clip(c, c0 - lim, c0 + lim)
        self.c[done] = c
        self.ep_rows[done] = self.ep_ok[done] = 0
        self.ep_sum[done] = 0.0

    def update(self, devices, X) -> Scores:
        """Score one new row for each of `devices` (distinct indices); X is len(devices) x n_sensors."""
        devs = np.asarray(devices, np.int64).reshape(-1)
        X = np.asarray(X, float).reshape(len(devs), self.n_sensors)
        n = len(devs)
        score = np.full(n, np.nan)
        anomaly = np.zeros(n, np.int8)
        cp = np.zeros(n, np.int8)
        ready = self.fitted[devs].copy()
        if ready.any():
            sel = np.flatnonzero(ready)
            d = devs[sel]
            sc, an, c = self._advance(d, X[sel, None, :])
            score[sel], anomaly[sel], cp[sel] = sc[:, 0], an[:, 0], c[:, 0]
            self._end_epochs(d)
        if self.warmup is not None and not ready.all():
            for j in np.flatnonzero(~ready).tolist():
                self._learn(int(devs[j]), X[j : j + 1])
        return Scores(score, anomaly, cp, ready)

    def _learn(self, i: int, rows: np.ndarray) -> None:
        buf = self._buffers.setdefault(i, [])
        buf.append(rows)
        if sum(len(b) for b in buf) >= self.warmup:
            self.fit_device(i, np.concatenate(buf), continue_state=True)

    def learning_rows(self, i: int) -> int:
        """Rows device i has collected toward its warm-up window (0 when fitted or not learning)."""
        return 0 if self.fitted[i] else sum(len(b) for b in self._buffers.get(i, []))


class Detector(FleetDetector):
    """One device: `fit(X)` on normal data (or `warmup` rows), then `update(row)` or `update(block)`."""

    def __init__(self, n_sensors: int, config: DetectorConfig | None = None, warmup: int | None = None):
        super().__init__(1, n_sensors, config, warmup)

    @property
    def ready(self) -> bool:
        return bool(self.fitted[0])

    def fit(self, X: np.ndarray, continue_state: bool = False) -> "Detector":
        self.fit_device(0, X, continue_state)
        return self

    def update(self, X, devices=None) -> Scores:  # type: ignore[override]
        """Score one row (n_sensors,) or a block (T, n_sensors), in order; the same result either way."""
        if devices is not None:
            return super().update(devices, X)
        X = np.asarray(X, float)
        X = X.reshape(-1, self.n_sensors)
        parts: list[Scores] = []
        dev = np.zeros(1, np.int64)
        i, T = 0, len(X)
        while i < T:
            if not self.fitted[0]:
                if self.warmup is None:
                    m = T - i
                else:
                    m = min(T - i, self.warmup - self.learning_rows(0))
                    self._learn(0, X[i : i + m])
                nan = np.full(m, np.nan)
                parts.append(Scores(nan, np.zeros(m, np.int8), np.zeros(m, np.int8), np.zeros(m, bool)))
            else:
                m = min(T - i, int(self.epoch[0] - self.ep_rows[0]))
                sc, an, c = self._advance(dev, X[None, i : i + m])
                parts.append(Scores(sc[0], an[0].astype(np.int8), c[0], np.ones(m, bool)))
                self._end_epochs(dev)
            i += m
        return Scores.concat(parts)


def describe(detector: FleetDetector, i: int = 0, names: list[str] | None = None) -> str:
    """One line on what device i's model learnt."""
    if not detector.fitted[i]:
        return "not fitted"
    names = names or [f"sensor {j}" for j in range(detector.n_sensors)]
    text = f"{detector.components[i]} principal component(s) of {detector.n_sensors - len(detector.ignored[i])} sensor(s)"
    if detector.ignored[i]:
        text += "; constant in training, ignored: " + ", ".join(names[j] for j in detector.ignored[i])
    return text


__all__ = ["DetectorConfig", "Detector", "FleetDetector", "Scores", "TooLittleData", "describe"]
