"""The JSON report: what happened to every frame, and where the time went.

The keys ``reference``, ``scale``, ``backend``, ``frames`` (each with
``path``, ``used``, ``reason``, ``sharpness``, ``transform``) and ``timings``
are read by other tools: new keys may be added, these are never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .align import drop_reason
from .backends import base as S
from .discover import FrameInfo
from .geometry import decompose, output_size
from .kernelmerge import kernel_sigma
from .options import KERNEL_MERGES
from .robust import DISAGREE_LIMIT
from .state import FrameState


@dataclass
class FrameRecord:
    """What the pipeline learns about one input frame."""

    path: Path
    info: FrameInfo
    score: object = None  # cull.FrameScore when scored
    state: FrameState | None = None  # alignment state when processed
    rejected: float | None = None  # fraction of its covered pixels the robust merge left out
    culled: bool = False
    disagreement: float | None = None  # RobustWeights.check: residual over what noise explains (~1)
    local: dict | None = None  # the local refinement's figures (local.frame_report), when estimated

    @property
    def used(self) -> bool:
        return bool(self.state is not None and self.state.accepted)

    def drop_reason(self, align_config) -> str | None:
        """Why the merge left the processed frame out (None if it was used)."""
        if self.state is None or self.state.accepted:
            return None
        if self.state.status == S.STATUS_DISAGREES:
            return (f"content disagrees with the reference: residual {self.disagreement:.1f} times what "
                    f"noise explains (limit {DISAGREE_LIMIT:g})")
        return drop_reason(self.state, align_config)


def frame_entry(r: FrameRecord, is_reference: bool, align_config) -> dict:
    sc = r.score
    entry = {
        "path": str(r.path),
        "used": r.used,
        "reason": None,
        "sharpness": None if sc is None else float(sc.sharpness),
        "transform": None,
        "reference": is_reference,
        "sharpness_ratio": None if sc is None else round(float(sc.ratio), 4),
        "noise": None if sc is None else float(sc.noise),
    }
    if r.culled:
        entry["reason"] = sc.reason
    elif r.state is not None:
        st = r.state
        d = decompose(st.T)
        other = not is_reference
        entry.update(
            {
                "reason": r.drop_reason(align_config),
                "transform": [[float(v) for v in row] for row in st.T],
                "shift_px": [round(d["dx"], 4), round(d["dy"], 4)],
                "rotation_deg": round(d["rotation_deg"], 5),
                "zoom": round(d["scale"], 6),
                "residual_rms": st.rms if other else None,
                "correlation": st.corr if other else None,
                "overlap": st.overlap if other else None,
                "phase_correlation_peak": st.pc_peak if other else None,
                "gain": st.gain,
                "offset": st.offset,
                "rejected_fraction": r.rejected,
                "disagreement": None if r.disagreement is None else round(r.disagreement, 4),
                "local": r.local,
            }
        )
    return entry


def build_report(cfg, records: list[FrameRecord], ref_idx: int, mask_path, backend_name: str, timings: dict,
                 peak_gpu_mib: float | None, restoration: dict | None = None, motion: str | None = None,
                 motion_choice=None) -> dict:
    """The report of a run (see the module docstring and the README).

    ``restoration`` is what the kernel merge's deconvolution measured;
    ``motion`` the motion model used (default: the configured one);
    ``motion_choice`` the :class:`~superres_gpu.align.ModelChoice` behind it
    when ``--motion auto`` chose it."""
    ref_info = records[ref_idx].info
    frames = [frame_entry(r, i == ref_idx, cfg.align) for i, r in enumerate(records)]
    residuals = [f["residual_rms"] for f in frames if f["used"] and f.get("residual_rms") is not None]
    w, h = output_size(ref_info.width, ref_info.height, cfg.scale)
    return {
        "tool": f"superres_gpu {__version__}",
        "reference": str(records[ref_idx].path),
        "scale": float(cfg.scale),
        "backend": backend_name,
        "motion": motion or cfg.motion,
        "motion_option": cfg.motion,
        "motion_selection": None if motion_choice is None else motion_choice.report(),
        "merge": cfg.merge,
        "kernel_sigma": kernel_sigma(cfg.scale) if cfg.merge in KERNEL_MERGES else None,
        "kernel_shape": getattr(cfg, "kernel_shape", None) if cfg.merge in KERNEL_MERGES else None,
        "cull": cfg.cull,
        "sharpen": cfg.sharpen != "off",
        "sharpen_mode": cfg.sharpen,
        "optics_sigma": float(cfg.optics_sigma) if cfg.merge in KERNEL_MERGES else None,
        "restoration": restoration,
        "refine": cfg.refine,
        "mask": str(mask_path) if mask_path else None,
        "input_size": [ref_info.width, ref_info.height],
        "output": str(cfg.output) if cfg.output else None,
        "format": getattr(cfg, "format", None),
        "gamma": getattr(cfg, "gamma", None),
        "raw": getattr(ref_info, "raw", None),  # raw input: levels, white balance, noise profile
        "output_size": [w, h],
        "channels": ref_info.channels,
        "bits_in": ref_info.bits,
        "frames": frames,
        "summary": {
            "frames": len(frames),
            "used": sum(f["used"] for f in frames),
            "dropped": sum(not f["used"] for f in frames),
            "culled": sum(r.culled for r in records),
            "residual_rms_median": float(np.median(residuals)) if residuals else None,
            "residual_rms_max": float(np.max(residuals)) if residuals else None,
        },
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "peak_rss_mib": peak_rss_mib(),
        "peak_gpu_mib": peak_gpu_mib,
    }


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (Linux VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None
