"""Which option is the cheapest that meets a latency target at a request rate?

``recommend`` evaluates, for every batch size and precision asked:

- every EI accelerator on every notebook instance (price = instance + accelerator, SageMaker);
- every whole-GPU instance (``ml.g4dn.xlarge``, ``ml.g5.xlarge``, ``ml.p3.2xlarge``), twice: with
  the framework runtime EI's client would have used, and with a tuned runtime (TensorRT-class),
  since published figures for one GPU differ by 10x between the two;
- CPU-only: every notebook instance and every CPU instance on its own (fp32 only: onnxruntime on
  CPU gains nothing from fp16).

Every latency is modelled (``estimate``), not measured; the ``basis`` column says which model.

**Two groups.** EI closed to new customers on 2023-04-15 (``Accelerator.available_until``): its
rows are in the group ``"EI (retired 2023)"``, every other option (whole-GPU instances, L4 and
Inferentia2 included, and CPU-only instances) in ``"available today"``. ``pick_ei`` and
``pick_today`` are the pick of each group, and the reason ends with both ("With EI …; today …").
``ml.inf2.xlarge`` is a roofline on Inferentia2's published peaks (its ``basis`` says so) and has
no tuned-runtime row.

**fp16 agreement.** When an fp16 check of the model was passed (``fp16=``) or already run in this
process (``ei_widgets.device.fp16.fp16_check``), every fp16 row carries what fp16 did to the model's
outputs (``fp16_agreement``: top-1 agreement for a classifier, else the relative error, or "not
measured" with the check's reason); otherwise the field is None.

Per row: ``latency_ms`` of one call; ``throughput_per_s``, the inferences per second one unit
serves with ``concurrency`` calls in flight (default: enough to keep its busiest resource busy);
``fits`` in memory; ``price_per_hour``; ``cost_per_million`` inferences when serving
``requests_per_second`` (or its full throughput when no rate is given); ``meets``: fits, latency at
most the target and throughput at least the rate.

Rows are sorted: those that meet first, then by $/h, $ per million inferences and latency. The pick
is the first row that meets; without a target or a rate, the one with the lowest cost per million.

The latencies carry the model's own validated error (``ei_widgets.device.accuracy``: the error
of the group of published rows the model resembles, stated in ``accuracy``; a model like none of
them is told its latency is an estimate of unknown error). When the pick, or a cheaper option
that misses, is within that error of the latency target, the answer is too close to call
(``too_close``) and the reason names only the options the error could move across the target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal, overload

from ei_widgets.device import accelerator
from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import NOT_VALIDATED, Catalog, Instance, default_catalog
from ei_widgets.device.endpoint_sizing import (
    ENDPOINT_BATCH_SIZES,
    EndpointRecommendation,
    size_endpoint,
)
from ei_widgets.device.estimate import (
    PRECISIONS,
    Estimate,
    check_batch,
    check_precision,
    cpu_flops,
    default_runtime,
    device,
    estimate_batches,
    host_op_count,
)
from ei_widgets.device.fp16 import FP16Check, cached_check
from ei_widgets.device.recommendation import TODAY, Recommendation, Row
from ei_widgets.device.sequence import (
    SEQUENCE_LENGTHS,
    LengthScaling,
    latency_by_length,
    loaded_inputs,
)
from ei_widgets.errors import EIError, ProfileError, require_positive_int
from ei_widgets.models.loading import load_model
from ei_widgets.models.types import LoadedModel
from ei_widgets.profiling.input_binding import sequence_is_variable
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import Profile

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
"""The batch sizes weighed unless others are asked for."""

DEFAULT_LATENCY_TARGET_MS = 50.0
"""The latency target of every sizing question unless another is asked (None: no target)."""

DEFAULT_REQUESTS_PER_SECOND = 10.0
"""The request rate of every sizing question unless another is asked (None or 0: any rate)."""

EVERY_INSTANCE = "all"
"""``instance=EVERY_INSTANCE`` weighs EI on every notebook instance, not only the kernel's."""

BASIS = {
    "accelerator": "modelled: network-attached EI accelerator",
    "gpu": "modelled: whole GPU, framework runtime",
    "tuned": "modelled: whole GPU, tuned runtime (TensorRT-class)",
    "cpu": "modelled: CPU only",
}
TUNED = "tensorrt"


def _positive_or_none(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EIError(f"{what} must be a positive number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise EIError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _money(value: Decimal) -> str:
    return f"${value:.2f}/h"


def _condition(target: float | None, rps: float | None) -> str:
    parts = []
    if target is not None:
        parts.append(f"{target:g} ms")
    if rps is not None:
        parts.append(f"{rps:g} req/s")
    return " at ".join(parts)


@overload
def recommend(
    model_or_profile: Any,
    *,
    latency_target_ms: float | None = ...,
    requests_per_second: float | None = ...,
    batch_sizes: Iterable[int] | None = ...,
    precisions: Iterable[str] = ...,
    instance: str | None = ...,
    concurrency: int | None = ...,
    catalog: Catalog | None = ...,
    fp16: FP16Check | None = ...,
    endpoint: Literal[False] = ...,
    **loader_options: Any,
) -> Recommendation: ...


@overload
def recommend(
    model_or_profile: Any,
    *,
    latency_target_ms: float | None = ...,
    requests_per_second: float | None = ...,
    batch_sizes: Iterable[int] | None = ...,
    precisions: Iterable[str] = ...,
    instance: str | None = ...,
    concurrency: int | None = ...,
    catalog: Catalog | None = ...,
    fp16: FP16Check | None = ...,
    endpoint: Literal[True],
    **loader_options: Any,
) -> EndpointRecommendation: ...


def recommend(
    model_or_profile: Any,
    *,
    latency_target_ms: float | None = DEFAULT_LATENCY_TARGET_MS,
    requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
    batch_sizes: Iterable[int] | None = None,
    precisions: Iterable[str] = PRECISIONS,
    instance: str | None = None,
    concurrency: int | None = None,
    catalog: Catalog | None = None,
    fp16: FP16Check | None = None,
    seq_len: int | None = None,
    endpoint: bool = False,
    **loader_options: Any,
) -> Recommendation | EndpointRecommendation:
    """Evaluate every option and return the sorted table with its pick and a one-line reason.

    ``endpoint=True`` sizes a hosted endpoint instead (:mod:`ei_widgets.device.endpoint_sizing`):
    instance type, accelerator and instance count whose p90 latency at ``requests_per_second``
    meets the target, each request one call at batch 1 (or at ``batch_sizes``), EI weighed on
    every instance type unless ``instance`` names one; ``concurrency`` and ``fp16`` do not apply.

    One question, one answer: the dashboard's Sizing tab, ``%ei_recommend`` and
    ``ei-widgets recommend`` ask it with these same defaults (a 50 ms target at 10 requests per
    second, batch sizes 1 to 32, fp32 and fp16), which the result states.
    ``instance``: the notebook instance EI is attached to (default: the kernel's, as
    ``ei_widgets.attach`` uses; ``"all"`` weighs every notebook instance).
    ``fp16``: an fp16 check of the model (``ei_widgets.device.fp16.fp16_check``) for the fp16 rows'
    agreement; default: the check already run on this model in this process, if any.
    ``seq_len``: the sequence length of a transformer's inputs (default 128; an error for a model
    without one); for such a model the result also holds ``by_length``, the pick's modelled
    latency at 64 to 512 tokens (``ei_widgets.device.sequence``).
    ``loader_options`` go to the model's loader (``input_shape=`` for a PyTorch module).
    """
    if endpoint:
        if concurrency is not None or fp16 is not None:
            raise EIError(
                "endpoint=True sizes instance counts under load: leave out concurrency= and fp16="
            )
        if requests_per_second is None or requests_per_second == 0:
            raise EIError(
                "Endpoint sizing needs a request rate: pass requests_per_second= (e.g. 100)."
            )
        rate = _positive_or_none(requests_per_second, "requests_per_second")
        _, profiled = _profile(model_or_profile, seq_len, **loader_options)
        one_call = recommend(
            profiled,
            latency_target_ms=latency_target_ms,
            requests_per_second=None,  # the instance count serves the rate, not one unit
            batch_sizes=ENDPOINT_BATCH_SIZES if batch_sizes is None else batch_sizes,
            precisions=precisions,
            instance=EVERY_INSTANCE if instance is None else instance,
            catalog=catalog,
        )
        return size_endpoint(one_call, profiled, requests_per_second=rate or 0.0, catalog=catalog)
    cat = catalog or default_catalog()
    target = _positive_or_none(latency_target_ms, "latency_target_ms")
    rps = _positive_or_none(requests_per_second or None, "requests_per_second")
    batches = sorted(
        {check_batch(b) for b in (DEFAULT_BATCH_SIZES if batch_sizes is None else batch_sizes)}
    )
    if not batches:
        raise EIError("batch_sizes must name at least one batch size")
    precs = list(dict.fromkeys(check_precision(p) for p in precisions))
    if not precs:
        raise EIError("precisions must name at least one of fp32, fp16")
    if concurrency is not None:
        require_positive_int(concurrency, "Concurrency", ProfileError)
    if instance == EVERY_INSTANCE:
        notebooks = cat.notebook_instances()
    else:
        where = instance if instance is not None else accelerator.state().instance.name
        notebooks = (cat.notebook_instance(where),)
    source, profile = _profile(model_or_profile, seq_len, **loader_options)

    rows: list[Row] = []

    def add(
        ests: list[Estimate],
        kind: str,
        acc: str | None,
        host: Instance,
        price: Decimal,
        group: str = TODAY,
        basis: str | None = None,
    ) -> None:
        option = f"{acc} on {host.name}" if acc else host.name
        if kind == "cpu":
            option += " (CPU only)"
        tuned = ests[0].runtime == TUNED
        if tuned:
            option += " (TensorRT)"
        basis = basis or BASIS["tuned" if tuned else kind]
        price_float = float(price)
        for est in ests:
            latency_ms = est.latency_s * 1e3
            if concurrency is None:
                throughput = est.batch_size / est.busy_s if est.busy_s > 0 else math.inf
            else:
                throughput = est.throughput(concurrency)
            fits = est.fits
            served = min(throughput, rps) if rps is not None else throughput
            cost = None
            if fits and served > 0 and math.isfinite(served):
                # to the micro-dollar; float is exact enough there and far cheaper per row
                cost = Decimal(f"{price_float * 1e6 / (3600.0 * served):.6f}")
            meets = (
                fits
                and (target is None or latency_ms <= target)
                and (rps is None or throughput >= rps)
            )
            rows.append(
                Row(
                    option=option,
                    kind=kind,
                    accelerator=acc,
                    instance=host.name,
                    batch_size=est.batch_size,
                    precision=est.precision,
                    latency_ms=latency_ms,
                    throughput_per_s=throughput,
                    bound=est.bound,
                    memory_needed_bytes=est.memory_needed_bytes,
                    memory_available_bytes=est.memory_available_bytes,
                    fits=fits,
                    price_per_hour=price,
                    cost_per_million=cost,
                    meets=meets,
                    basis=basis,
                    runtime=est.runtime,
                    group=group,
                )
            )

    # The notebook instance changes more than the price: its network carries every call's
    # payload, and its CPUs run any host-side ops. Instances alike in both share one estimate.
    host_ops = host_op_count(profile, catalog=cat) > 0
    for acc in cat.accelerators.values():
        group = _group(acc.available_until)
        for prec in precs:
            shared: dict[tuple[float, float], list[Estimate]] = {}
            for host in notebooks:
                link = device(acc, instance=host, catalog=cat).link_bytes_per_second
                alike = (link, cpu_flops(host, cat) if host_ops else 0.0)
                if alike not in shared:
                    shared[alike] = estimate_batches(
                        profile, acc, batches, precision=prec, instance=host, catalog=cat
                    )
                price = host.price_per_hour + acc.price_per_hour
                add(shared[alike], "accelerator", acc.name, host, price, group)
    for gpu in cat.gpu_instances():
        # Inferentia2 is no GPU: one row per setting, a roofline on its published peaks
        runtimes = (default_runtime(profile), TUNED) if gpu.tuned_runtime else (None,)
        basis = f"modelled: {gpu.model_note}" if gpu.model_note else None
        for prec in precs:
            for runtime in runtimes:
                ests = estimate_batches(
                    profile, gpu, batches, precision=prec, runtime=runtime, catalog=cat
                )
                add(ests, "gpu", None, gpu, gpu.price_per_hour, basis=basis)
    for host in (*notebooks, *cat.cpu_instances()):
        ests = estimate_batches(profile, host, batches, precision="fp32", catalog=cat)
        add(ests, "cpu", None, host, host.price_per_hour)

    by_cost = target is None and rps is None
    never = Decimal("Infinity")

    def key(row: Row) -> tuple[Any, ...]:
        cost = row.cost_per_million if row.cost_per_million is not None else never
        if by_cost:
            return (not row.meets, cost, row.latency_ms)
        return (not row.meets, row.price_per_hour, cost, row.latency_ms)

    rows.sort(key=key)
    pick = rows[0] if rows and rows[0].meets else None
    pick_ei = next((r for r in rows if r.group != TODAY and r.meets), None)
    pick_today = next((r for r in rows if r.group == TODAY and r.meets), None)
    check = fp16 if fp16 is not None else cached_check(profile)
    if check is not None and "fp16" in precs:
        agreement = check.agreement
        for row in rows:
            if row.precision == "fp16":
                row.fp16_agreement = agreement
    reason = _reason(rows, pick, target, rps)
    reason += " " + _groups_sentence(rows, pick_ei, pick_today)
    close = None
    accuracy = NOT_VALIDATED
    if cat.validation is not None:
        # The model's own validated error: its group's (ei_widgets.device.accuracy), or unknown.
        model = model_accuracy(profile, catalog=cat)
        accuracy = model.explained
        if model.band is None:
            reason += f" The latency is an estimate of unknown error ({model.reason})."
        elif target is not None:
            close = _too_close(rows, pick, target, rps, model.band)
            if close:
                reason += " " + close
    shown = pick or pick_ei or (rows[0] if rows else None)
    by_length = None
    if source is not None and shown is not None and sequence_is_variable(loaded_inputs(source)):
        by_length = _by_length(source, shown, profile, cat)
    return Recommendation(
        rows=tuple(rows),
        pick=pick,
        reason=reason,
        latency_target_ms=target,
        requests_per_second=rps,
        accuracy=accuracy,
        too_close=bool(close),
        pick_ei=pick_ei,
        pick_today=pick_today,
        fp16=check,
        by_length=by_length,
    )


def _by_length(source: LoadedModel, row: Row, profiled: Profile, cat: Catalog) -> LengthScaling:
    """The modelled latency of ``row``'s option at the usual lengths and the one profiled."""
    lengths = {*SEQUENCE_LENGTHS, profiled.seq_len or SEQUENCE_LENGTHS[0]}
    if row.kind == "accelerator":
        assert row.accelerator is not None
        target, instance = row.accelerator, row.instance
    else:
        target, instance = row.instance, None
    return latency_by_length(
        source,
        target,
        lengths=lengths,
        batch_size=row.batch_size,
        precision=row.precision,
        instance=instance,
        runtime=row.runtime if row.kind == "gpu" else None,
        catalog=cat,
    )


def _group(available_until: str | None) -> str:
    """``"EI (retired 2023)"`` for an accelerator closed to new customers, else today's group."""
    return TODAY if available_until is None else f"EI (retired {available_until[:4]})"


def _setting(row: Row) -> str:
    where = f"on {row.instance}, " if row.kind == "accelerator" else ""
    runtime = ", TensorRT" if row.runtime == TUNED else ""
    return f"{where}batch {row.batch_size}, {row.precision}{runtime}"


def _groups_sentence(rows: list[Row], pick_ei: Row | None, pick_today: Row | None) -> str:
    """``"With EI (retired 2023): …; today: …."``: the pick of each group, or that none meets."""
    ei_name = next((r.group for r in rows if r.group != TODAY), None)
    parts = []
    if ei_name is not None:
        parts.append(
            f"With {ei_name}: "
            + (
                f"{pick_ei.label} at {_money(pick_ei.price_per_hour)} ({_setting(pick_ei)})"
                if pick_ei is not None
                else "no accelerator meets it"
            )
        )
    if any(r.group == TODAY for r in rows):
        parts.append(
            ("today: " if parts else "Today: ")
            + (
                f"{pick_today.label} at {_money(pick_today.price_per_hour)}"
                f" ({_setting(pick_today)})"
                if pick_today is not None
                else "nothing available meets it"
            )
        )
    return "; ".join(parts) + "."


def _too_close(
    rows: list[Row], pick: Row | None, target: float, rps: float | None, band: float
) -> str | None:
    """A sentence when the model's error could change the answer at ``target``, else None.

    An estimate ``L`` stands for a true latency anywhere in ``L x (1 ± band)``: the pick may miss
    the target when ``L x (1 + band) > target``, and a cheaper option that fits but misses may
    meet it when ``L x (1 - band) <= target``.
    """
    if pick is None:
        return None
    cheaper = [
        r for r in rows
        if r.fits and not r.meets and r.price_per_hour < pick.price_per_hour
        and r.latency_ms * (1 - band) <= target and (rps is None or r.throughput_per_s >= rps)
    ]  # fmt: skip
    at_risk = pick.latency_ms * (1 + band) > target
    if not cheaper and not at_risk:
        return None
    # Only the options the error could move across the target are named: the sentence must be
    # true of the numbers beside it.
    parts = [f"{pick.label} at {pick.latency_ms:.3g} ms"] if at_risk else []
    if cheaper:
        near = min(cheaper, key=lambda r: (r.price_per_hour, r.latency_ms))
        parts.append(f"the cheaper {near.label} at {near.latency_ms:.3g} ms")
    verb = "are" if len(parts) > 1 else "is"
    return (
        f"Too close to call: {' and '.join(parts)} {verb} within this model's ±{band:.0%} of the "
        f"{target:g} ms target; measure on the real service before you decide."
    )


def _reason(rows: list[Row], pick: Row | None, target: float | None, rps: float | None) -> str:
    cond = _condition(target, rps)
    if pick is None:
        fitting = [r for r in rows if r.fits]
        if not fitting:
            return "No option fits the model in memory at these batch sizes and precisions."
        fastest = min(fitting, key=lambda r: r.latency_ms)
        return (
            f"No option meets {cond}; the fastest that fits is {fastest.label} at "
            f"{fastest.latency_ms:.1f} ms (batch {fastest.batch_size}, {fastest.precision}, "
            f"{_money(fastest.price_per_hour)})."
        )
    setting = f"batch {pick.batch_size}, {pick.precision}"
    if pick.kind == "accelerator":
        setting = f"on {pick.instance}, {setting}"
    if not cond:
        return (
            f"{pick.label} costs least per inference: ${pick.cost_per_million:.2f} per million "
            f"at {_money(pick.price_per_hour)} ({setting})."
        )
    head = f"{pick.label} meets {cond} for {_money(pick.price_per_hour)} ({setting})"
    if pick.kind == "gpu":
        return head + "; no EI accelerator or CPU-only option meets it."
    gpus = [r for r in rows if r.kind == "gpu" and r.meets]
    if not gpus:
        return head + "; no whole-GPU instance meets it."
    other = min(gpus, key=lambda r: r.price_per_hour)
    if other.price_per_hour <= 0:
        return head + "."
    saving = (1 - pick.price_per_hour / other.price_per_hour) * 100
    return f"{head}, {saving:.0f}% less than {other.label} ({_money(other.price_per_hour)})."


def _profile(
    model: Any, seq_len: int | None, **loader_options: Any
) -> tuple[LoadedModel | None, Profile]:
    """The model as loaded (None when a profile was given) and its profile."""
    if isinstance(model, Profile):
        if seq_len is not None and seq_len != model.seq_len:
            raise ProfileError(
                f"seq_len={seq_len} cannot re-bind a profile made at {model.seq_len} tokens; "
                "give the model itself."
            )
        return None, model
    loaded = load_model(model, **loader_options)
    return loaded, profile(loaded, seq_len=seq_len)
