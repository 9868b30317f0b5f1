"""How far to trust a modelled latency for one model: its group among the published rows, and
that group's validated error.

The latency model was fitted to, and validated on, published EI measurements of a few kinds of
model (``benchmarks/calibrate.py``; ``docs/validation.md``). Its error is a property of the kind:
what drives a dense CNN classifier's latency (convolutions, kernel launches) is not what drives a
two-stage detector's (a suppression and other sequential post-processing that no accelerator
shortens). So each model is put in the group of published rows it resembles, by the ops that
decide its latency, and is told that group's error, measured leave-one-source-out (each
publication predicted by a fit made without it). A model unlike every group (a transformer, an
RNN, a model with Loop, Scan or If) is told so plainly: its latency is an estimate of unknown
error.

Groups (``GROUPS``), tried in order:

- ``"unknown"``: any op of ``UNLIKE_OPS`` (control flow, recurrent and attention ops), or most of
  the work outside convolutions (a MatMul-dominated model such as a transformer, or a tree
  ensemble);
- ``"detector"``: convolutions plus data-dependent post-processing (``DETECTOR_OPS``:
  NonMaxSuppression, RoiAlign, MaxRoiPool);
- ``"classifier"``: at least ``CONV_SHARE`` of the FLOPs in convolutions and none of the above.

CPU-only rows are validated as their own group too (``"cpu"``): a CPU-only option states the
error of the CPU rows when that is wider than its model group's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ei_widgets.device.catalog import Catalog, GroupError, default_catalog
from ei_widgets.profiling.result import Profile

UNKNOWN = "unknown"
UNKNOWN_TEXT = (
    "no published EI measurement resembles this model; the latency is an estimate of unknown error"
)
GROUPS: dict[str, str] = {
    "classifier": "dense CNN classifiers",
    "detector": "detectors with data-dependent post-processing",
    "cpu": "CPU-only runs",
    UNKNOWN: "models unlike every published measurement",
}
CONV_OPS = frozenset({"Conv", "ConvTranspose", "QLinearConv", "ConvInteger", "FusedConv"})
DETECTOR_OPS = frozenset({"NonMaxSuppression", "RoiAlign", "MaxRoiPool"})
UNLIKE_OPS = frozenset(
    {
        "Loop", "Scan", "If", "SequenceMap",  # control flow: data-dependent work
        "LSTM", "GRU", "RNN",  # recurrent
        "Attention", "MultiHeadAttention", "GroupQueryAttention", "LayerNormalization",
        "SkipLayerNormalization", "SimplifiedLayerNormalization", "Einsum",  # attention blocks
    }
)  # fmt: skip
CONV_SHARE = 0.8  # share of FLOPs in convolutions that makes a convolutional network


@dataclass(frozen=True)
class Accuracy:
    """What a user is told of one model's modelled latencies."""

    group: str  # a key of GROUPS
    reason: str  # why: the ops that decide it
    error: GroupError | None  # the group's validated error; None when unknown or not validated

    @property
    def known(self) -> bool:
        return self.error is not None

    @property
    def band(self) -> float | None:
        """The stated relative error (every validated row of the group lies inside it), or None
        when the error is unknown."""
        return None if self.error is None else self.error.band

    @property
    def text(self) -> str:
        """``"modelled: ±27% for detectors with data-dependent post-processing (...)"``, or the
        unknown sentence."""
        if self.error is None:
            return f"modelled: {UNKNOWN_TEXT}"
        return f"modelled: {self.error.text}"

    @property
    def explained(self) -> str:
        """:attr:`text` and why the model falls in its group (the ops that decide it)."""
        return f"{self.text}; this model: {self.reason}"


def classify(profile: Profile) -> tuple[str, str]:
    """The group of published rows ``profile`` resembles, and why (the deciding ops)."""
    kinds = Counter(n.op_type for n in profile.nodes)
    unlike = sorted(k for k in kinds if k in UNLIKE_OPS)
    if unlike:
        return UNKNOWN, f"it has {_ops(unlike)}, which no published EI measurement had"
    total = sum(n.flops for n in profile.nodes if not n.folded)
    conv = sum(n.flops for n in profile.nodes if n.op_type in CONV_OPS and not n.folded)
    share = conv / total if total else 0.0
    detector = sorted(k for k in kinds if k in DETECTOR_OPS)
    if detector and share >= 0.5:
        return (
            "detector",
            f"convolutions ({share:.0%} of its FLOPs) with {_ops(detector)}: data-dependent "
            "post-processing, like the published Faster R-CNN rows",
        )
    if share >= CONV_SHARE:
        return "classifier", f"convolutions do {share:.0%} of its FLOPs, as in the published CNNs"
    heaviest = max(
        ((k, sum(n.flops for n in profile.nodes if n.op_type == k)) for k in kinds),
        key=lambda kv: kv[1],
        default=("", 0),
    )[0]
    where = f"; most is {heaviest}" if heaviest else ""
    return UNKNOWN, (
        f"convolutions do only {share:.0%} of its FLOPs{where}, unlike every published row"
    )


def model_accuracy(
    profile: Profile, *, catalog: Catalog | None = None, cpu_only: bool = False
) -> Accuracy:
    """The group ``profile`` falls in, why, and that group's validated error.

    ``cpu_only``: for a CPU-only option, the wider of the model group's error and the CPU rows'.
    Unknown when the model resembles no group, or the catalog carries no validation of its group.
    """
    cat = catalog or default_catalog()
    group, reason = classify(profile)
    validation = cat.validation
    if group == UNKNOWN or validation is None or group not in validation.groups:
        return Accuracy(group, reason, None)
    error = validation.groups[group]
    cpu = validation.groups.get("cpu")
    if cpu_only and cpu is not None and cpu.band > error.band:
        error = cpu
    return Accuracy(group, reason, error)


def _ops(kinds: list[str]) -> str:
    return ", ".join(kinds[:-1]) + (" and " if len(kinds) > 1 else "") + kinds[-1]
