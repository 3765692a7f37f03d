"""Local refinement: a smooth displacement field on top of the global motion model.

A global model (one 3x3 matrix per frame) cannot follow what moves
differently across the frame: rolling-shutter wobble (each row read at its
own moment, so hand tremor shifts rows by different amounts), parallax, or
lens distortion that differs between frames.  After the global fit, each
frame gets a residual displacement field D in the reference's coordinates:
the frame is read at Tinv (p + D(p)) instead of Tinv p.

The field
    A coarse grid of nodes ``cell`` reference pixels apart, node (i, j) at
    ((j + 0.5) cell - 0.5, (i + 0.5) cell - 0.5), bilinear between nodes and
    constant beyond the outer ones (``common.cuh``'s ``sr_field_at_f``, the
    twin's ``field_at``).  Each node's tile is the support of its bilinear
    hat: 2 ``cell`` px wide, overlapping its neighbours' by 50 %.  Bilinear
    interpolation of nodes has no seams, and as the field is a residual in
    reference coordinates on top of the global model, a rotating camera
    leaves no square pattern.

Estimation (per frame, on the pyramid level ``level``, 0 by default)
    First each tile of the frame warped by the global model is phase
    correlated with the reference's tile (``B.tile_phase_shifts``); where the
    peak is clear and the shift beyond Gauss-Newton's reach (``pc_min_px``),
    the tile starts from it, elsewhere from 0.  Then inverse-compositional
    Gauss-Newton for the nodes' translations, all tiles at once: the frame
    is warped by the global model plus the current field (``B.warp_residual``,
    the signed residual e = gain s + offset - ref),
    and each node is moved by -H^-1 sum(phi g e), where phi is the node's hat,
    g the reference's gradient and H = sum(phi g g^T) its structure tensor
    over the tile (Huber weights on e: what moved counts less).  For a
    constant displacement this is the exact Gauss-Newton step of every tile;
    between tiles it is a Jacobi iteration for the bilinear field's
    least-squares fit, which converges for every spatial frequency the grid
    holds (a few iterations for smooth fields).

Confidence, per node
    * texture: the uncertainty sd = sqrt(4/9 A sigma^2 / lambda_min) (px,
      where lambda_min is the smaller eigenvalue of H, sigma^2 the node's
      residual variance after the fit, 4/9 the hat's variance factor and A
      the correlation area of the filtered noise, 4 pi sigma_f^2 for the
      level's prefilter sigma_f) must be at most ``max_sd``: flat tiles are
      rejected;
    * agreement: the residual must not have risen, and the vector must lie
      within max(``outlier_sd`` sd, ``outlier_px``) of the median of its
      accepted 3x3 neighbours (``B.field_median3``).
    Accepted vectors are smoothed robustly (each moves towards the mean of its
    accepted neighbours by sd^2 / (sd^2 + difference^2): what noise explains
    is averaged away, what the neighbours confirm as structure is kept), and
    rejected nodes are filled from accepted ones around them (repeated 3x3
    averaging), else left at 0: the global model.

The node spacing is chosen once per burst from the reference's texture and
noise (:meth:`LocalRefiner.choose_cell`): the smallest of ``cells`` whose
predicted median node uncertainty is within ``target_sd``.

``--local auto`` applies the field to a frame only when it is significant:
the accepted vectors' mean (|D| / sd)^2 over both components above
``auto_chi2`` (about 1 for pure noise) and the field's RMS above
``auto_px``.  The burst's first ``probe_frames`` frames are probed first on
the coarser pyramid level ``probe_level`` (a quarter of the pixels: about a
fifth of the time), significant there above ``probe_chi2`` (that level's
uncertainties read about 2x low on static bursts, so its threshold is
higher); the first frame that is significant there, and every frame after
it, is refined on ``level`` as above; when none is, the probed frames keep
the global model and the rest are not refined at all (a static burst pays
for three coarse fits).
``on`` applies it whenever enough nodes are accepted (``min_accept``).
Everything stays on the backend's device; each frame's figures
(:data:`STATS`) are read back after the burst, and under ``auto`` each
probed frame's decision (one value) as it is made.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .backends import base as S
from .errors import ConfigError
from .interp import gaussian_taps

TENT_VARIANCE = 4.0 / 9.0  # sum(phi^2) / sum(phi) of a 2-D bilinear hat: the LS variance factor
STATS = ("applied", "accepted", "nodes", "rms_px", "max_px", "residual_before", "residual_after", "chi2", "level")
_APPLIED = STATS.index("applied")
_PROBE = "probe"  # the option of auto's coarse probe (internal)


@dataclass
class LocalConfig:
    """Tuning of the local refinement; the defaults are what the benchmark measured."""

    level: int = 0  # pyramid level the field is solved on
    cells: tuple = (32, 48, 64)  # candidate node spacings (level-0 px): tiles of 64, 96, 128 px
    target_sd: float = 0.04  # px: median predicted node uncertainty the spacing is chosen for
    iters: int = 4  # Gauss-Newton steps of the field
    max_sd: float = 0.2  # px: a node less certain than this is rejected (too little texture)
    outlier_sd: float = 3.0  # a node this many sd from its neighbours' median ...
    outlier_px: float = 0.3  # ... and at least this far (px) is rejected (disagrees)
    min_accept: float = 0.25  # fraction of nodes that must be accepted for a field at all
    auto_chi2: float = 4.0  # --local auto: mean (|D| / sd)^2 per component of the accepted nodes ...
    auto_px: float = 0.02  # ... and the field's RMS (px) above which it is applied
    min_cover: float = 0.1  # fraction of a node's hat the frame must cover
    smooth_sd: float = 0.0  # px: floor of the uncertainty the robust smoothing assumes
    smooth: float = 1.0  # strength of the robust smoothing: the node uncertainty it takes as noise, in sd
    fill_passes: int = 8  # 3x3 averaging passes that fill rejected nodes from accepted ones
    huber_k: float = 2.0  # Huber threshold in units of the residual's RMS
    pc: bool = True  # phase correlation of every tile first (local shifts beyond Gauss-Newton's reach)
    pc_peak: float = 0.2  # ... a tile's correlation peak must reach this to start from its shift ...
    pc_min_px: float = 1.5  # ... and the shift be at least this large (level px); Gauss-Newton starts smaller ones at 0
    probe_frames: int = 3  # --local auto: with none of the first frames significant, the rest are not refined
    probe_level: int = 1  # --local auto: the first frames are probed on this pyramid level ...
    probe_chi2: float = 8.0  # ... and significant there above this (static bursts: 0.9 to 3.9; wobble: 24 and up)
    blur: float = 0.0  # Gaussian sigma (level px) on the residual and the reference, beyond level 0's prefilter

    def validate(self) -> None:
        if not self.cells or any(not (c >= 4) for c in self.cells):
            raise ConfigError("local cells must be at least 4 px")
        if self.iters < 1:
            raise ConfigError("local iters must be at least 1")


def active(cfg) -> bool:
    """Whether a run estimates local fields."""
    return cfg.local != "off"


def hat_matrix(n_pixels: int, level: int, cell: float, nodes: int) -> np.ndarray:
    """(nodes, n_pixels) float32: row j holds node j's bilinear hat at each
    level-``level`` pixel of one axis, the transpose of the field's clamped
    bilinear interpolation at those pixels (so each column sums to 1)."""
    f = float(2**level)
    p = f * (np.arange(n_pixels, dtype=np.float64) + 0.5) - 0.5
    q = np.clip((p + 0.5) / cell - 0.5, 0.0, nodes - 1.0)
    i0 = np.floor(q).astype(np.int64)
    i1 = np.minimum(i0 + 1, nodes - 1)
    t = q - i0
    A = np.zeros((nodes, n_pixels), np.float64)
    cols = np.arange(n_pixels)
    np.add.at(A, (i0, cols), 1.0 - t)
    np.add.at(A, (i1, cols), t)
    return A.astype(np.float32)


def noise_sigma(B, img) -> float:
    """Noise standard deviation of an image (Immerkaer's Laplacian-difference
    operator, robust: the median absolute response, so edges barely count);
    one host read per burst."""
    xp = B.xp
    c = img[1:-1, 1:-1]
    r = (4.0 * c - 2.0 * (img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:])
         + (img[:-2, :-2] + img[:-2, 2:] + img[2:, :-2] + img[2:, 2:]))
    step = max(1, r.size // (1 << 18))
    a = np.abs(B.asnumpy(xp.ascontiguousarray(r).ravel()[::step]).astype(np.float64))
    return float(1.4826 * np.median(a) / 6.0) if a.size else 0.0


@dataclass
class LocalResult:
    """A frame's field (on the device; None when not estimated) and its figures
    (a device vector laid out as :data:`STATS`)."""

    field: object
    stats: object
    cell: float = 0.0


@dataclass
class LocalRefiner:
    """Estimates each frame's displacement field against one reference (per burst)."""

    B: object
    ref: object
    option: str = "auto"
    config: LocalConfig = field(default_factory=LocalConfig)

    def __post_init__(self):
        B, ref, cfg = self.B, self.ref, self.config
        cfg.validate()
        if self.option not in ("auto", "on", _PROBE):
            raise ConfigError(f"local refinement option {self.option!r} is not auto or on")
        xp = B.xp
        self.level = min(cfg.level, ref.levels - 1)
        self.ref_img = ref.level_image(self.level)
        self.margin = ref.margin(self.level)
        h, w = self.ref_img.shape
        # detail near the frames' Nyquist frequency aliases differently in every frame and pulls
        # tiles towards false matches (zone plates, fine bars): the fit sees both sides blurred
        self.taps = gaussian_taps(cfg.blur) if cfg.blur > 0 else None
        gx, gy = B.gradient(self._blur(self.ref_img))
        # the residual is filtered noise (level 0: the alignment prefilter; coarser levels: the
        # pyramid's [1, 3, 3, 1] filter, about 0.43 level px): neighbouring pixels are not
        # independent, and a least-squares fit's variance grows by about the noise's
        # correlation area 4 pi sigma^2 (at least 1)
        pre = ref.config.prefilter if self.level == 0 else 0.43
        self.corr_area = max(1.0, 4.0 * math.pi * (pre**2 + cfg.blur**2))
        self.gx, self.gy = gx, gy
        m = ref.masks[self.level]
        self.keep = None if m is None else B.asarray(1.0 - np.ascontiguousarray(m[:h, :w], dtype=np.float32))
        self.noise = noise_sigma(B, ref.pyramid[self.level])  # before any prefilter: white
        self.cell, self.predicted_sd = self.choose_cell()
        self.gw = int(math.ceil(ref.width / self.cell))
        self.gh = int(math.ceil(ref.height / self.cell))
        self.Ax = B.asarray(hat_matrix(w, self.level, self.cell, self.gw))
        self.Ay = B.asarray(hat_matrix(h, self.level, self.cell, self.gh))
        self.gxx, self.gxy, self.gyy = gx * gx, gx * gy, gy * gy
        self.zero = xp.zeros((self.gh, self.gw, 2), dtype=xp.float32)
        # phase-correlation tiles: twice the node spacing, centred on the nodes, kept inside the frame
        cl = self.cell / float(2**self.level)
        self.tile = int(2 * round(cl))
        self.pc = cfg.pc and 8 <= self.tile <= min(h, w)
        if self.pc:
            def starts(n_nodes, n_px):
                c = (np.arange(n_nodes) + 0.5) * cl - 0.5
                return np.clip(np.rint(c + 0.5 - self.tile / 2.0), 0, n_px - self.tile).astype(np.int64)

            self.tile_x = B.asarray(starts(self.gw, w))
            self.tile_y = B.asarray(starts(self.gh, h))
        self.probed = 0  # auto: frames probed so far
        self.probing = self.option == "auto"  # auto: until a probed frame is significant, or probe_frames are not
        self.stopped = False  # auto: no local motion in the first frames, the rest are not refined
        self.probe = None  # auto: the coarse refiner the first frames are probed with (None: this level's own)
        if self.probing:
            level = min(cfg.probe_level, ref.levels - 1)
            if level != self.level:
                self.probe = LocalRefiner(B, ref, _PROBE, dataclasses.replace(cfg, level=level, cells=(self.cell,)))

    def _blur(self, img):
        return img if self.taps is None else self.B.sepfilter(img, self.taps)

    def _residual(self, coef, state, D):
        """(blurred residual, coverage): coverage only where the blur saw no uncovered pixel."""
        B, xp = self.B, self.B.xp
        if D is None:
            e, cov = B.warp_residual(coef, self.ref_img, state, self.level, self.margin)
        else:
            e, cov = B.warp_residual(coef, self.ref_img, state, self.level, self.margin, D, self.cell)
        if self.taps is not None:
            e = B.sepfilter(e, self.taps)
            cov = (B.sepfilter(cov, self.taps) > xp.float32(0.999)).astype(xp.float32)
        if self.keep is not None:
            cov = cov * self.keep
        return e, cov

    def report(self) -> dict:
        """The report's burst-level figures of the refinement."""
        return {"active": True, "stopped_after": self.config.probe_frames if self.stopped else None,
                "level": self.level, "probe_level": None if self.probe is None else self.probe.level,
                "node_spacing_px": self.cell, "tile_px": 2 * self.cell,
                "nodes": [self.gw, self.gh], "predicted_sd_px": round(self.predicted_sd, 5),
                "noise": round(self.noise, 6)}

    def nodes(self, img, Ay=None, Ax=None):
        """Hat-weighted sums of a level image at every node, (gh, gw)."""
        Ay = self.Ay if Ay is None else Ay
        Ax = self.Ax if Ax is None else Ax
        return (Ay @ img) @ Ax.T

    def choose_cell(self) -> tuple[float, float]:
        """(spacing, predicted median node sd in px): the smallest candidate
        spacing whose nodes' median uncertainty (two frames' noise against
        the reference's structure tensor) is within ``target_sd``; else the largest."""
        B, cfg = self.B, self.config
        h, w = self.ref_img.shape
        g2 = [self.gx * self.gx, self.gx * self.gy, self.gy * self.gy]
        f = float(2**self.level)
        best = None
        for cell in sorted(cfg.cells):
            gw, gh = int(math.ceil(self.ref.width / cell)), int(math.ceil(self.ref.height / cell))
            Ax = B.asarray(hat_matrix(w, self.level, cell, gw))
            Ay = B.asarray(hat_matrix(h, self.level, cell, gh))
            # the unfiltered noise of two frames against the filtered gradients: the filter's
            # variance reduction and the correlation area cancel
            hxx, hxy, hyy = (B.asnumpy(self.nodes(g, Ay, Ax)).astype(np.float64) for g in g2)
            lam = 0.5 * (hxx + hyy) - np.sqrt(0.25 * (hxx - hyy) ** 2 + hxy**2)
            with np.errstate(divide="ignore", invalid="ignore"):
                sd = np.sqrt(TENT_VARIANCE * 2.0 * self.noise**2 / lam) * f
            sd = np.where(lam > 0, sd, np.inf)
            med = float(np.median(sd))
            best = (float(cell), med)
            if med <= cfg.target_sd:
                break
        return best

    def refine(self, levels, state) -> LocalResult | None:
        """The field of one aligned frame (:class:`~superres_gpu.align.FrameLevels`
        ``levels``, state vector ``state``), already zero where it is not applied;
        None once ``auto`` found no local motion in the burst's first
        ``probe_frames`` frames.  Under ``auto`` a probed frame that is not
        significant gets the probe's figures and no field (None)."""
        if self.stopped:
            return None
        if not self.probing:
            return self._refine(levels, state)
        probe = self if self.probe is None else self.probe
        res = probe._refine(levels, state)
        self.probed += 1
        if float(self.B.asnumpy(res.stats[_APPLIED])) > 0.0:  # local motion: refine this frame and the rest
            self.probing = False
            return res if self.probe is None else self._refine(levels, state)
        self.stopped = self.probed >= self.config.probe_frames
        return LocalResult(None, res.stats, self.cell)

    def _refine(self, levels, state) -> LocalResult:
        B, cfg = self.B, self.config
        xp = B.xp
        f32 = xp.float32
        coef = levels.coef[self.level]
        scale = f32(2**self.level)
        gain = xp.maximum(state[S.S_GAIN], 1e-3).astype(f32)
        D = self.zero.copy()
        e, cov = self._residual(coef, state, None)
        n = self.nodes(cov)
        before = self.nodes(e * e * cov)
        if self.pc:
            # the frame warped by the global model against the reference, tile by tile: where W(x) ~
            # R(x + s), the frame is read at p + D with D = -s
            warped = e if self.taps is None else B.warp_residual(coef, self.ref_img, state, self.level,
                                                                 self.margin)[0]
            sh = B.tile_phase_shifts(self.ref_img, warped + self.ref_img, self.tile_x, self.tile_y, self.tile)
            big = (sh[..., 2] >= f32(cfg.pc_peak)) & ((sh[..., 0] ** 2 + sh[..., 1] ** 2) >= f32(cfg.pc_min_px**2))
            D = xp.where(big[..., None], sh[..., :2] * (f32(-1.0) * scale), f32(0.0)).astype(f32)
            e, cov = self._residual(coef, state, D)
        sigma = xp.sqrt((e * e * cov).sum() / xp.maximum(cov.sum(), 1.0)).astype(f32)
        thr = xp.maximum(sigma * f32(cfg.huber_k), f32(1e-6))
        for it in range(cfg.iters + 1):
            if it > 0:
                e, cov = self._residual(coef, state, D)
            ae = xp.abs(e)
            wt = cov * xp.minimum(f32(1.0), thr / xp.maximum(ae, f32(1e-12)))  # Huber
            if it == cfg.iters:
                break
            hxx, hxy, hyy = self.nodes(self.gxx * wt), self.nodes(self.gxy * wt), self.nodes(self.gyy * wt)
            ew = e * wt
            bx, by = self.nodes(self.gx * ew), self.nodes(self.gy * ew)
            det = hxx * hyy - hxy * hxy
            ok = det > f32(1e-12) * (hxx + hyy) ** 2
            sdet = xp.where(ok, det, f32(1.0))
            step = f32(-1.0) * scale / gain
            dx = xp.where(ok, (hyy * bx - hxy * by) / sdet, f32(0.0)) * step
            dy = xp.where(ok, (hxx * by - hxy * bx) / sdet, f32(0.0)) * step
            D = D + xp.stack([dx, dy], axis=2)
        after = self.nodes(e * e * cov)
        n_after = self.nodes(cov)
        lam = f32(0.5) * (hxx + hyy) - xp.sqrt(f32(0.25) * (hxx - hyy) ** 2 + hxy * hxy)
        var = after / xp.maximum(n_after, f32(1e-6))
        sd = xp.sqrt(f32(TENT_VARIANCE * self.corr_area) * var / xp.maximum(lam, f32(1e-20))) * scale
        full = f32((self.cell / float(2**self.level)) ** 2)  # a whole hat's sum of weights
        accepted = (lam > 0) & (sd <= f32(cfg.max_sd)) & (after <= before * f32(1.001)) \
            & (n_after >= f32(cfg.min_cover) * full)
        med = B.field_median3(D, accepted.astype(f32))
        dev = xp.sqrt(((D - med) ** 2).sum(axis=2))
        accepted &= dev <= xp.maximum(f32(cfg.outlier_sd) * sd, f32(cfg.outlier_px))  # NaN median: rejected
        field_ = self._regularise(D, accepted, sd)
        count = accepted.sum().astype(xp.float64)
        nodes = self.gh * self.gw
        sd_safe = xp.maximum(sd, f32(1e-6))
        chi2 = xp.where(accepted, ((D / sd_safe[..., None]) ** 2).sum(axis=2), f32(0.0)).sum() / xp.maximum(
            2.0 * count, 1.0)
        mag2 = (field_ * field_).sum(axis=2)
        rms = xp.sqrt(mag2.mean())
        enough = count >= cfg.min_accept * nodes
        if self.option == "on":
            use = enough
        else:
            limit = cfg.probe_chi2 if self.option == _PROBE else cfg.auto_chi2
            use = enough & (chi2 > limit) & (rms > cfg.auto_px)
        field_ = field_ * use.astype(f32)
        total_n = xp.maximum(n.sum(), f32(1.0))
        stats = xp.stack([use.astype(xp.float64), count, xp.asarray(float(nodes)), rms.astype(xp.float64),
                          xp.sqrt(mag2.max()).astype(xp.float64),
                          xp.sqrt(before.sum() / total_n).astype(xp.float64),
                          xp.sqrt(after.sum() / xp.maximum(n_after.sum(), f32(1.0))).astype(xp.float64),
                          chi2.astype(xp.float64), xp.asarray(float(self.level))])
        return LocalResult(xp.ascontiguousarray(field_.astype(f32)), stats, self.cell)

    def _regularise(self, D, accepted, sd):
        """Robust smoothing of the accepted vectors and filling of the rest (see the module docstring)."""
        xp = self.B.xp
        f32 = xp.float32
        c = accepted.astype(f32)
        num = _conv3(D * c[..., None], xp)
        den = _conv3(c, xp)
        mean = num / xp.maximum(den, f32(1e-12))[..., None]
        diff2 = ((mean - D) ** 2).sum(axis=2)
        s2 = (xp.maximum(sd, xp.float32(self.config.smooth_sd)) * xp.float32(self.config.smooth)) ** 2
        alpha = s2 / (s2 + diff2 + f32(1e-12))
        smooth = D + alpha[..., None] * (mean - D)
        known = accepted
        out = xp.where(known[..., None], smooth, f32(0.0))
        for _ in range(self.config.fill_passes):
            k = known.astype(f32)
            n2 = _conv3(out * k[..., None], xp)
            d2 = _conv3(k, xp)
            fill = ~known & (d2 > 0)
            out = xp.where(fill[..., None], n2 / xp.maximum(d2, f32(1e-12))[..., None], out)
            known = known | fill
        return xp.where(known[..., None], out, f32(0.0))


def _conv3(a, xp):
    """[1, 2, 1] x [1, 2, 1] / 16 over a node grid's first two axes, edges replicated."""
    pad = ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2)
    p = xp.pad(a, pad, mode="edge")
    r = p[:, :-2] + 2.0 * p[:, 1:-1] + p[:, 2:]
    return (r[:-2] + 2.0 * r[1:-1] + r[2:]) * (1.0 / 16.0)


def frame_report(stats) -> dict:
    """The report's ``local`` entry of one frame from its figures (host array, :data:`STATS`)."""
    v = dict(zip(STATS, (float(x) for x in stats)))
    return {
        "applied": bool(v["applied"]),
        "accepted_tiles": int(v["accepted"]),
        "tiles": int(v["nodes"]),
        "field_rms_px": round(v["rms_px"], 5),
        "field_max_px": round(v["max_px"], 5),
        "residual_before": round(v["residual_before"], 6),
        "residual_after": round(v["residual_after"], 6),
        "significance": round(v["chi2"], 3),
        "level": int(v["level"]),
    }
