"""How a transformer's modelled latency grows with its sequence length.

A sequence length cannot be scaled like a batch: attention's work grows with its square, the rest
linearly. So each length is profiled anew (the graph is bound again, not exported again: a
PyTorch transformer is exported once with a variable sequence axis) and its latency modelled by
``estimate`` on one option. :func:`latency_by_length` is the one place that does it;
``recommend()``, the Inspector and the command line only display its result. Every latency is
modelled and carries the model's validated error (``ei_widgets.device.accuracy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ei_widgets.common.html import NO_MATH, note, table
from ei_widgets.common.units import format_count, format_ms
from ei_widgets.device import accelerator
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import Accelerator, Catalog, Instance, default_catalog
from ei_widgets.device.estimate import estimate
from ei_widgets.errors import ProfileError, require_positive_int
from ei_widgets.models.loading import load_model
from ei_widgets.models.types import LoadedModel, max_sequence_length
from ei_widgets.profiling.input_binding import sequence_axes, sequence_is_variable
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

SEQUENCE_LENGTHS: tuple[int, ...] = (64, 128, 256, 512)
"""The lengths shown unless others are asked for."""

DEFAULT_TARGET = "ml.eia2.medium"
"""Where a length table is modelled when nothing is attached (EI's most used size)."""


@dataclass(frozen=True)
class LengthPoint:
    """One sequence length: the work of a call and its modelled latency."""

    seq_len: int
    flops: int
    latency_ms: float  # modelled
    fits: bool


@dataclass(frozen=True)
class LengthScaling:
    """Modelled latency of one option at several sequence lengths."""

    option: str  # where it is modelled: "ml.eia2.medium on ml.t3.medium"
    batch_size: int
    precision: str
    points: tuple[LengthPoint, ...]
    accuracy: str  # "modelled: ..." with the model's validated error

    @property
    def growth(self) -> float | None:
        """Latency at the longest length over latency at the shortest."""
        if len(self.points) < 2 or self.points[0].latency_ms <= 0:
            return None
        return self.points[-1].latency_ms / self.points[0].latency_ms

    @property
    def heading(self) -> str:
        """``"Latency by sequence length on X, batch 1, fp32 (modelled: ...)"``."""
        return (
            f"Latency by sequence length on {self.option}, batch {self.batch_size}, "
            f"{self.precision} ({self.accuracy})"
        )

    @property
    def row(self) -> str:
        """``"64 tokens 1.2 ms · 128 tokens 2.0 ms · ..."``; lengths that do not fit say so."""
        return " · ".join(
            f"{p.seq_len:,} tokens {format_ms(p.latency_ms / 1e3)}"
            + ("" if p.fits else " (does not fit)")
            for p in self.points
        )

    @property
    def text(self) -> str:
        """The heading, one line per length and the growth, as plain text."""
        lines = [self.heading + ":"]
        lines += [
            f"  {p.seq_len:>6,} tokens  {format_ms(p.latency_ms / 1e3):>10}  "
            f"{format_count(p.flops)}FLOPs" + ("" if p.fits else "  does not fit")
            for p in self.points
        ]
        if self.growth is not None:
            first, last = self.points[0].seq_len, self.points[-1].seq_len
            lines.append(f"  {last / first:g}x the tokens: {self.growth:.2f}x the latency")
        return "\n".join(lines)


def latency_by_length(
    model: Any,
    target: str | Accelerator | Instance,
    *,
    lengths: Iterable[int] = SEQUENCE_LENGTHS,
    batch_size: int = 1,
    precision: str = "fp32",
    instance: str | Instance | None = None,
    runtime: str | None = None,
    catalog: Catalog | None = None,
    **loader_options: Any,
) -> LengthScaling:
    """Modelled latency of one call of ``model`` on ``target`` at each of ``lengths`` tokens.

    ``model`` is anything ``profile()`` takes (not a profile: each length is profiled again);
    ``target``, ``instance`` and ``runtime`` are as for ``estimate``. Raises
    :class:`ProfileError` for a model with no sequence dimension, or one whose length is fixed.
    """
    if isinstance(model, Profile):
        raise ProfileError(
            "latency_by_length needs the model, not its profile: each length is profiled anew."
        )
    sizes = sorted({require_positive_int(n, "Each sequence length", ProfileError) for n in lengths})
    if not sizes:
        raise ProfileError("lengths must name at least one sequence length, such as 128.")
    loaded = load_model(model, **loader_options)  # once: an export is not repeated per length
    longest = max_sequence_length(loaded.model)
    if longest is not None:  # only the lengths the model takes (its position table)
        sizes = [n for n in sizes if n <= longest] or [longest]
    if not sequence_is_variable(loaded_inputs(loaded)):
        raise ProfileError(
            f"{loaded.name} has no variable sequence dimension: its latency cannot be modelled "
            "at other lengths."
        )
    cat = catalog or default_catalog()
    points: list[LengthPoint] = []
    accuracy = ""
    option = ""
    for length in sizes:
        prof = profile(loaded, batch_size=batch_size, seq_len=length)
        est = estimate(
            prof,
            target,
            batch_size=batch_size,
            precision=precision,
            instance=instance,
            runtime=runtime,
            catalog=cat,
        )
        points.append(LengthPoint(length, prof.flops, est.latency_s * 1e3, est.fits))
        if not accuracy:
            accuracy = model_accuracy(prof, catalog=cat, cpu_only=est.kind == "cpu").text
            option = {
                "accelerator": f"{est.target} on {est.instance}",
                "cpu": f"{est.target} (CPU only)",
            }.get(est.kind, est.target)
    return LengthScaling(option, batch_size, precision, tuple(points), accuracy)


def length_table_html(scaling: LengthScaling, marked: int | None = None) -> str:
    """The table views show: one row per length (``marked`` highlighted), its heading above."""
    rows = [
        (
            f"{p.seq_len:,}",
            f"{format_count(p.flops)}FLOPs",
            format_ms(p.latency_ms / 1e3),
            "yes" if p.fits else "no",
        )
        for p in scaling.points
    ]
    growth = ""
    if scaling.growth is not None:
        first, last = scaling.points[0].seq_len, scaling.points[-1].seq_len
        growth = f"; {last / first:g}x the tokens take {scaling.growth:.2f}x the latency"
    picked = [i for i, p in enumerate(scaling.points) if p.seq_len == marked]
    return (
        f'<div class="{NO_MATH}" style="margin-top:6px"><b>Latency by sequence length</b>'
        + note(scaling.heading + growth)
        + table(["tokens", "work", "latency (modelled)", "fits"], rows, "rrrl", picked)
        + "</div>"
    )


def length_table(
    model: Any,
    *,
    batch_size: int = 1,
    seq_len: int | None = None,
    catalog: Catalog | None = None,
) -> LengthScaling | None:
    """The length table the Inspector, ``%ei_inspect`` and ``ei-widgets inspect`` show: on the
    attached accelerator (at its precision, on its instance) or else :data:`DEFAULT_TARGET`, at
    :data:`SEQUENCE_LENGTHS` and ``seq_len``. None for a model without a variable sequence."""
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    if not sequence_is_variable(loaded_inputs(loaded)):
        return None
    state = accelerator.state()
    att = state.attachment
    target = att.accelerator if att is not None else DEFAULT_TARGET
    return latency_by_length(
        loaded,
        target,
        lengths={*SEQUENCE_LENGTHS, *([seq_len] if seq_len is not None else [])},
        batch_size=batch_size,
        precision=att.precision if att is not None else "fp32",
        instance=state.instance,
        catalog=catalog or state.catalog,
    )


def lengths_offered(profile: Profile) -> tuple[int, ...] | None:
    """The sequence lengths a view offers for the model ``profile`` was made of: its own and those
    of :data:`SEQUENCE_LENGTHS` it takes (up to its position table); only its own when its length
    is fixed; None for a model without a sequence dimension."""
    if profile.seq_len is None:
        return None
    if not _variable(profile):
        return (profile.seq_len,)
    longest = profile.max_seq_len
    taken = (n for n in SEQUENCE_LENGTHS if longest is None or n <= longest)
    return tuple(sorted({profile.seq_len, *taken}))


def check_length(profile: Profile, seq_len: int) -> None:
    """Raise :class:`ProfileError` when the model ``profile`` was made of cannot be profiled at
    ``seq_len`` tokens (no sequence dimension, a fixed one, beyond its position table); cheap, so
    a request is refused at once rather than after a profile."""
    if profile.seq_len is None:
        raise ProfileError(
            f"{profile.name} has no sequence dimension: its latency does not depend on a number "
            "of tokens."
        )
    if seq_len != profile.seq_len and not _variable(profile):
        raise ProfileError(
            f"{profile.name}'s sequence length is fixed at {profile.seq_len} tokens; it cannot be "
            f"judged at {seq_len:,}. Export it with a variable sequence axis to compare lengths."
        )
    if profile.max_seq_len is not None and seq_len > profile.max_seq_len:
        raise ProfileError(
            f"{profile.name} takes at most {profile.max_seq_len:,} tokens (its position table); "
            f"choose {profile.max_seq_len:,} or fewer."
        )


def _variable(profile: Profile) -> bool:
    """Whether the inputs as declared have a sequence dimension that takes any length."""
    axes = sequence_axes({t.name: (0, t.shape) for t in profile.inputs})
    return any(not (isinstance(d, int) and d > 0) for d in axes.values())


def loaded_inputs(loaded: LoadedModel) -> list[Any]:
    """The graph inputs of ``loaded`` that are not initializers."""
    graph = loaded.model.graph
    constants = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in constants]
