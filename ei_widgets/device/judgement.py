"""The one judgement every view shows: whether a model fits each accelerator, its modelled latency
there and how far to trust it.

The Inspector, the Accelerator tab, the Run tab's breakdown, the JupyterLab picker (through the
comm) and the command line all call :func:`judge_all` (or :func:`judge` for one size), so they
show the same figures for the same model, batch, precision and notebook instance: the notebook
instance defaults to the kernel's, as an attachment would use. Views lay out what they are given;
none computes an estimate of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ei_widgets.device import accelerator
from ei_widgets.device.accuracy import Accuracy, model_accuracy
from ei_widgets.device.catalog import Accelerator, Catalog, Instance, default_catalog
from ei_widgets.device.estimate import PRECISIONS, Estimate, does_not_fit, estimate
from ei_widgets.errors import EIError
from ei_widgets.profiling.result import Profile

__all__ = ["Judgement", "Judgements", "judge", "judge_all"]


@dataclass(frozen=True)
class Judgement:
    """One accelerator at one precision and batch, for one model, on one notebook instance.

    ``estimate`` is None when the model could not be judged (``reason`` says why); ``fits`` is
    then None too. When it does not fit, ``reason`` is the core's own message: what it needs,
    what there is and the smallest size that would hold it.
    """

    accelerator: Accelerator
    precision: str
    batch_size: int
    instance: str
    estimate: Estimate | None
    reason: str | None

    @property
    def fits(self) -> bool | None:
        return None if self.estimate is None else self.estimate.fits

    @property
    def latency_ms(self) -> float | None:
        return None if self.estimate is None else self.estimate.latency_ms

    @property
    def memory_needed_bytes(self) -> int | None:
        return None if self.estimate is None else self.estimate.memory_needed_bytes


@dataclass(frozen=True)
class Judgements:
    """Every accelerator at every precision asked, for one model at one batch on one instance,
    and how far its modelled latencies can be trusted (its own group's validated error)."""

    profile: Profile
    batch_size: int
    instance: str
    accuracy: Accuracy
    by_accelerator: dict[str, dict[str, Judgement]]

    def of(self, name: str, precision: str) -> Judgement:
        """The judgement of accelerator ``name`` at ``precision`` (KeyError when not judged)."""
        return self.by_accelerator[name][precision]


def _instance(instance: str | Instance | None, catalog: Catalog) -> Instance:
    """The notebook instance to judge on: the one given, else the kernel's."""
    if isinstance(instance, Instance):
        return instance
    return accelerator.state().instance if instance is None else catalog.instance(instance)


def judge(
    profile: Profile,
    acc: Accelerator,
    *,
    batch_size: int = 1,
    precision: str = "fp32",
    instance: str | Instance | None = None,
    catalog: Catalog | None = None,
) -> Judgement:
    """Whether ``profile`` fits ``acc`` at ``batch_size`` and ``precision`` on ``instance`` (the
    kernel's notebook instance by default), and its modelled call there."""
    cat = catalog or default_catalog()
    host = _instance(instance, cat)
    try:
        est = estimate(
            profile,
            acc,
            batch_size=batch_size,
            precision=precision,
            instance=host,
            catalog=cat,
        )
    except EIError as error:
        return Judgement(acc, precision, batch_size, host.name, None, str(error))
    reason = None if est.fits else str(does_not_fit(profile, est, catalog=cat))
    return Judgement(acc, precision, batch_size, host.name, est, reason)


def judge_all(
    profile: Profile,
    *,
    batch_size: int = 1,
    precisions: Iterable[str] = PRECISIONS,
    instance: str | Instance | None = None,
    catalog: Catalog | None = None,
) -> Judgements:
    """:func:`judge` for every accelerator of the catalog at every precision in ``precisions``."""
    cat = catalog or default_catalog()
    host = _instance(instance, cat)
    wanted = tuple(precisions)
    judged = {
        name: {
            p: judge(profile, acc, batch_size=batch_size, precision=p, instance=host, catalog=cat)
            for p in wanted
        }
        for name, acc in cat.accelerators.items()
    }
    accuracy = model_accuracy(profile, catalog=cat)
    return Judgements(profile, batch_size, host.name, accuracy, judged)
