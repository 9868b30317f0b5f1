"""Accelerated sessions: the onnxruntime ``InferenceSession`` API on the attached accelerator.

Outputs are real: onnxruntime computes them on the host CPU. Time is simulated: each call is
metered with the latency the model of ``estimate`` gives for the attached accelerator, its batch
and precision, into the metrics stream.

Migrating existing inference code takes one changed line::

    sess = onnxruntime.InferenceSession("model.onnx")     # before
    sess = ei_widgets.session("model.onnx")               # after (with an accelerator attached)

    outputs = sess.run(None, {"input": batch})            # unchanged

``session`` takes what ``InferenceSession`` takes (a path or serialized bytes, ``sess_options``,
``providers``) and also a ``ModelProto`` or an existing ``InferenceSession``. Providers the host
lacks (CUDA, ...) are dropped: the host runs the model, the accelerator is simulated.

Clocks (:mod:`ei_widgets.device.pacing`):

- ``"paced"`` (default): a call takes at least its simulated latency in wall time (the device is a
  shared timeline, so concurrent calls queue as they would on one accelerator).
- ``"virtual"``: nothing sleeps; a shared virtual clock advances by each call's latency.

With fp16 attached, ``run`` returns the outputs of the model converted to fp16 for real
(``ei_widgets.device.fp16``: inputs and outputs stay float32), as EI returned an fp16 model's; a
model
that cannot be converted keeps its fp32 outputs (``fp16_check`` says why).

When the host takes longer than the simulated latency, the call cannot be faster than the host:
it is marked host-bound, and the simulated figures are still the ones reported.

Model load takes ``model_load_factor`` times the measured host load (plus a fixed part and the
weights crossing the network) and the first call after loading (or after the accelerator changed)
is a warm-up call (``warmup_factor``, ``warmup_fixed_seconds``), as on EI.

The batch of a call is the leading dimension of the session's first input. A batch whose memory
(weights + activations at that batch + runtime overhead) exceeds the accelerator raises
``DoesNotFitError`` before running, at load time for the session's batch and at run time for any
other batch; the failed call counts as an error. Wrong shapes or dtypes raise onnxruntime's own
error, also counted as an error, never as an inference.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ei_widgets.device import accelerator as _acc
from ei_widgets.device.catalog import Catalog, default_catalog
from ei_widgets.device.estimate import (
    Estimate,
    check_batch,
    does_not_fit,
    estimate,
    model_load_seconds,
    warmup_seconds,
)
from ei_widgets.device.fp16_conversion import fp16_session
from ei_widgets.device.metrics import MetricsStream, default_stream
from ei_widgets.device.pacing import DEFAULT_PACING, Pacing, check_pacing
from ei_widgets.errors import EIError, ModelLoadError, NoAcceleratorError, ProfileError
from ei_widgets.models.loading import is_ort_session, load_model
from ei_widgets.profiling.profiler import profile as make_profile
from ei_widgets.profiling.result import Profile

NO_ACCELERATOR = (
    "no accelerator attached: attach one first, e.g. ei_widgets.attach('ml.eia2.medium') "
    "(Elastic Inference said: Failed to detect any accelerator)"
)


class VirtualClock:
    """Simulated seconds that advance only when told to. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        """Move on by ``seconds``; returns the new time."""
        with self._lock:
            self._t += seconds
            return self._t


Entry = tuple[float, float, float, float, int]
"""One batch's simulated call: latency, device-busy seconds, FLOPs, peak FLOP/s, memory bytes."""


class _Binding:
    """The attachment and instance a session follows, with the entries computed for them."""

    __slots__ = ("att", "host", "table")

    def __init__(self, att: _acc.Attachment | None, host: Any) -> None:
        self.att = att
        self.host = host
        self.table: dict[int, Entry | EIError] = {}


class _Timeline:
    """The device's timeline for paced calls from many threads, in simulated seconds.

    Simulated time runs with wall time (``perf_counter``) less the delays this machine added:
    when a call's host work ends after the device would have finished it (host-bound), the excess
    is this machine's, not the device's, and is left out (``lag``). So a paced run reports the
    same device figures (throughput, utilisation) as a virtual one, while each call still lasts
    at least its simulated latency in wall time.
    """

    def __init__(self) -> None:
        self._free_at = 0.0  # simulated
        self._lag = 0.0  # wall seconds this machine fell behind the device, in all
        self._lock = threading.Lock()

    def reserve(self, now: float, busy_s: float, latency_s: float) -> tuple[float, float]:
        """Book the device for one call that arrived at wall time ``now``: returns when it
        completes, in simulated time and as a wall-clock deadline."""
        with self._lock:
            arrived = now - self._lag
            start = arrived if arrived > self._free_at else self._free_at
            self._free_at = start + busy_s
            lag = self._lag
        end = start + latency_s
        return end, end + lag

    def fell_behind(self, seconds: float) -> None:
        """This machine finished a call ``seconds`` after its deadline."""
        with self._lock:
            self._lag += seconds


_VIRTUAL = VirtualClock()
_PACED = _Timeline()


def virtual_clock() -> VirtualClock:
    """The clock virtual sessions share (calls on the one accelerator happen one after another)."""
    return _VIRTUAL


def _ort() -> Any:
    import onnxruntime

    return onnxruntime


def _host_providers(providers: Sequence[Any] | None) -> list[Any]:
    available = set(_ort().get_available_providers())
    kept = [p for p in providers or () if (p[0] if isinstance(p, tuple) else p) in available]
    return kept or ["CPUExecutionProvider"]


def _profile_of(loaded: Any, batch_size: int | None, seq_len: int | None = None) -> Profile:
    if batch_size is None:
        return make_profile(loaded, seq_len=seq_len)
    return make_profile(loaded, batch_size=batch_size, seq_len=seq_len)


class AcceleratedSession:
    """An ``onnxruntime.InferenceSession`` whose calls are metered on the attached accelerator.

    Build it with :func:`session`. Methods other than ``run`` and ``run_with_ort_values`` go
    straight to the underlying onnxruntime session (unmetered).
    """

    def __init__(
        self,
        ort_session: Any,
        profile: Profile,
        *,
        clock: Pacing,
        state: _acc.AcceleratorState,
        stream: MetricsStream,
        catalog: Catalog,
        host_load_seconds: float,
        batch_size: int,
        virtual: VirtualClock | None = None,
        fp16_model: Any = None,
    ) -> None:
        self._sess = ort_session
        self._fp16_model = fp16_model  # what to convert when fp16 is attached (None: never)
        self._fp16_sess: Any = None
        self.profile = profile
        self.clock: Pacing = clock
        self._state = state
        self._stream = stream
        self._catalog = catalog
        self._virtual = virtual or _VIRTUAL
        self._lock = threading.Lock()
        inputs = ort_session.get_inputs()
        self._first_name: str | None = inputs[0].name if inputs else None
        self.batch_size = batch_size
        self._binding = _Binding(None, None)
        self._warm = False
        self._bind(check_fit=True)
        self.host_load_seconds = host_load_seconds
        self.load_seconds = model_load_seconds(profile, host_load_seconds, catalog=catalog)
        if clock == "virtual":
            self._virtual.advance(self.load_seconds)
        else:
            time.sleep(max(self.load_seconds - host_load_seconds, 0.0))
        loaded = self._entry(batch_size, self._binding)
        assert not isinstance(loaded, EIError)  # _bind(check_fit=True) raised it already
        self._stream.set_memory(loaded[4], accelerator=self.accelerator)

    # --- binding to the attached accelerator -------------------------------------------------

    @property
    def accelerator(self) -> str | None:
        att = self._binding.att
        return att.accelerator.name if att is not None else None

    def _bind(self, *, check_fit: bool = False) -> None:
        """Follow the state: new accelerator, precision or instance -> new table, warm-up again.

        ``check_fit`` (at load) raises ``DoesNotFitError`` when the session's batch does not fit;
        at run time only the batch of the call is checked.
        """
        with self._lock:
            att, host = self._state.attachment, self._state.instance
            if att is None:
                raise NoAcceleratorError(NO_ACCELERATOR)
            binding = self._binding
            if att is binding.att and host is binding.host:
                return
            self._binding = _Binding(att, host)
            if att is not binding.att:
                self._warm = False
        if check_fit:
            entry = self._entry(self.batch_size, self._binding)
            if isinstance(entry, EIError):
                raise entry

    def estimate(self, batch_size: int | None = None) -> Estimate:
        """The simulated figures of one call at ``batch_size`` on what is attached now."""
        att = self._state.attachment
        if att is None:
            raise NoAcceleratorError(NO_ACCELERATOR)
        return self._estimate(att, self._state.instance, batch_size)

    def _estimate(self, att: _acc.Attachment, host: Any, batch_size: int | None) -> Estimate:
        return estimate(
            self.profile,
            att.accelerator,
            batch_size=self.batch_size if batch_size is None else batch_size,
            precision=att.precision,
            instance=host,
            catalog=self._catalog,
        )

    def _entry(self, batch: int, binding: _Binding) -> Entry | EIError:
        """(latency, busy, flops, peak, memory) for ``batch`` on ``binding``, or its error.

        Cached in ``binding``'s own table: an estimate finished after a concurrent re-attach
        lands in the replaced table, never in the new attachment's.
        """
        hit = binding.table.get(batch)
        if hit is not None:
            return hit
        entry: Entry | EIError
        try:
            check_batch(batch)
            if binding.att is None:
                raise NoAcceleratorError(NO_ACCELERATOR)
            est = self._estimate(binding.att, binding.host, batch)
            entry = (
                est.latency_s,
                est.busy_s,
                est.flops,
                est.peak_flops,
                est.memory_needed_bytes,
            )
            if not est.fits:
                entry = does_not_fit(self.profile, est, catalog=self._catalog)
        except EIError as exc:
            entry = exc
        if len(binding.table) < 1024:  # batches seen are few; the bound guards odd callers
            binding.table[batch] = entry
        return entry

    # --- metered calls ------------------------------------------------------------------------

    def _now(self) -> float:
        return self._virtual.now() if self.clock == "virtual" else time.perf_counter()

    def _batch_of(self, value: Any) -> int:
        shape = getattr(value, "shape", None)
        if callable(shape):  # OrtValue.shape()
            shape = shape()
        if shape is None:
            shape = np.shape(value)
        return int(shape[0]) if len(shape) else 1

    def _metered(self, call: Any, feed: Mapping[str, Any], *args: Any) -> Any:
        stream = self._stream
        state = self._state
        try:
            binding = self._binding
            if state.attachment is not binding.att or state.instance is not binding.host:
                self._bind()
                binding = self._binding
            value = feed.get(self._first_name) if self._first_name is not None else None
            batch = self.batch_size if value is None else self._batch_of(value)
            found = binding.table.get(batch)
            entry = self._entry(batch, binding) if found is None else found
            if isinstance(entry, EIError):
                raise entry
        except Exception as exc:
            stream.record_error(exc, at=self._now())
            raise
        t0 = time.perf_counter()
        try:
            outputs = call(*args)
        except Exception as exc:
            stream.record_error(exc, at=self._now())
            raise
        host_s = time.perf_counter() - t0
        latency, busy = entry[0], entry[1]
        first = False
        if not self._warm:
            with self._lock:
                first, self._warm = not self._warm, True
            if first:
                extra = warmup_seconds(latency, catalog=self._catalog)
                latency, busy = latency + extra, busy + extra
        if self.clock == "virtual":
            at = self._virtual.advance(latency)
        else:
            at, deadline = _PACED.reserve(t0, busy, latency)
            wait = deadline - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:  # this machine finished after the device would have: not device time
                _PACED.fell_behind(-wait)
        stream.record(
            latency,
            batch,
            at=at,
            host_s=host_s,
            flops=entry[2],
            peak_flops=entry[3],
            memory_bytes=entry[4],
            host_bound=host_s > latency,
            accelerator=binding.att.accelerator.name if binding.att is not None else None,
            warmup=first,
        )
        return outputs

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[Any]:
        """``InferenceSession.run``: real outputs, metered on the attached accelerator."""
        result: list[Any] = self._metered(
            self._host_session().run, input_feed, output_names, input_feed, run_options
        )
        return result

    def run_with_ort_values(
        self,
        output_names: Sequence[str] | None,
        input_dict_ort_values: Mapping[str, Any],
        run_options: Any = None,
    ) -> Any:
        """``InferenceSession.run_with_ort_values``, metered like ``run``."""
        return self._metered(
            self._host_session().run_with_ort_values,
            input_dict_ort_values,
            output_names,
            input_dict_ort_values,
            run_options,
        )

    def _host_session(self) -> Any:
        """The session whose outputs a call returns: the fp16 conversion when fp16 is attached."""
        att = self._state.attachment
        if att is None or att.precision != "fp16" or self._fp16_model is None:
            return self._sess
        if self._fp16_sess is None:
            try:
                self._fp16_sess = fp16_session(self._fp16_model) or self._sess
            except EIError:  # the graph is not available (a session given as is): fp32 outputs
                self._fp16_sess = self._sess
        return self._fp16_sess

    # --- the rest of the InferenceSession API -------------------------------------------------

    def get_inputs(self) -> Any:
        return self._sess.get_inputs()

    def get_outputs(self) -> Any:
        return self._sess.get_outputs()

    def get_overridable_initializers(self) -> Any:
        return self._sess.get_overridable_initializers()

    def get_modelmeta(self) -> Any:
        return self._sess.get_modelmeta()

    def get_providers(self) -> list[str]:
        result: list[str] = self._sess.get_providers()
        return result

    def get_provider_options(self) -> Any:
        return self._sess.get_provider_options()

    def get_session_options(self) -> Any:
        return self._sess.get_session_options()

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: the rest of the onnxruntime API, unmetered.
        if name.startswith("__") or name == "_sess":
            raise AttributeError(name)
        return getattr(self._sess, name)

    def __repr__(self) -> str:
        return (
            f"<AcceleratedSession {self.profile.name!r} on {self.accelerator} "
            f"({self.clock} clock, batch {self.batch_size})>"
        )


def session(
    model: Any,
    sess_options: Any = None,
    *,
    clock: Pacing = DEFAULT_PACING,
    providers: Sequence[Any] | None = None,
    provider_options: Sequence[Any] | None = None,
    batch_size: int | None = None,
    seq_len: int | None = None,
    profile: Profile | None = None,
    state: _acc.AcceleratorState | None = None,
    stream: MetricsStream | None = None,
    catalog: Catalog | None = None,
    **loader_options: Any,
) -> AcceleratedSession:
    """An accelerated session for ``model`` on the attached accelerator.

    ``model``: a path, serialized bytes, an ``onnx.ModelProto`` or an ``InferenceSession``.
    ``batch_size``: the batch checked against the accelerator's memory at load (default: the
    first input's leading dimension when fixed, else the profile's batch). ``seq_len``: the
    sequence length of a transformer's calls, modelled and checked against memory (default 128;
    an error for a model without a sequence dimension). ``profile``: reuse a
    profile already computed. ``state``/``stream``/``catalog`` default to the kernel's own.
    ``loader_options`` go to the model's loader (``example_inputs=`` or ``input_shape=`` for a
    PyTorch module).
    """
    check_pacing(clock)
    st = state or _acc.state()
    if st.attachment is None:
        raise NoAcceleratorError(NO_ACCELERATOR)
    if batch_size is not None:
        check_batch(batch_size)
    cat = catalog or st.catalog or default_catalog()

    loaded = load_model(model, **loader_options)
    ort = _ort()
    t0 = time.perf_counter()
    if ort_source := _reusable_session(model):
        ort_session = ort_source
    else:
        source = loaded.ort_source()
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        try:
            ort_session = ort.InferenceSession(
                source,
                sess_options,
                providers=_host_providers(providers),
                provider_options=provider_options,
            )
        except Exception as error:  # onnxruntime's own exception types share no public base
            if not type(error).__module__.startswith("onnxruntime"):
                raise
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise ModelLoadError(f"onnxruntime cannot load {loaded.name!r}: {reason}") from None
    host_load = time.perf_counter() - t0
    if profile is None:
        profile = _profile_of(loaded, batch_size, seq_len)
    elif seq_len is not None and seq_len != profile.seq_len:
        raise ProfileError(
            f"seq_len={seq_len} contradicts the profile given, made at {profile.seq_len} "
            "tokens; give one or the other."
        )
    if batch_size is None:
        inputs = ort_session.get_inputs()
        lead = inputs[0].shape[0] if inputs and inputs[0].shape else None
        batch_size = lead if isinstance(lead, int) and lead > 0 else (profile.batch_size or 1)
    return AcceleratedSession(
        ort_session,
        profile,
        clock=clock,
        state=st,
        stream=stream or default_stream(),
        catalog=cat,
        host_load_seconds=host_load,
        batch_size=batch_size,
        fp16_model=loaded,
    )


def _reusable_session(model: Any) -> Any:
    """An existing onnxruntime session is used as it is (the host model is already loaded)."""

    return model if is_ort_session(model) else None
