"""The model an endpoint hosts and the instances that serve it, one request at a time each.

:class:`HostedModel` is the real onnxruntime session with the profile and modelled figures of the
endpoint's instance (+ accelerator), from ``ei_widgets.endpoint.capacity`` (that is, from
``ei_widgets.device.estimate``); its load time is ``device.estimate.model_load_seconds`` and the
first call on each instance is a warm-up (``device.estimate.warmup_seconds``), as on EI.

:class:`Scheduler` keeps the instances: a request goes to a free instance, else waits in a bounded
FIFO queue, else is refused with 503 (SageMaker throttling). An instance computes the outputs for
real (one thread per instance) and, with the ``paced`` clock, answers no sooner than the modelled
latency after it started; with ``virtual``, as soon as the host has the outputs.
``ModelLatency`` is the wait in the queue plus the modelled call.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ei_widgets.device.accuracy import model_accuracy
from ei_widgets.device.catalog import default_catalog
from ei_widgets.device.estimate import (
    Estimate,
    check_precision,
    does_not_fit,
    model_load_seconds,
    warmup_seconds,
)
from ei_widgets.endpoint.capacity import endpoint_estimate
from ei_widgets.endpoint.cloudwatch import Recorder
from ei_widgets.endpoint.codec import InputSpec, InvocationError
from ei_widgets.endpoint.config import ServerConfig
from ei_widgets.errors import EIError
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile as make_profile
from ei_widgets.profiling.result import Profile

__all__ = ["INLINE_S", "Entry", "HostedModel", "Scheduler"]

INLINE_S = 0.0005
"""Calls this host computes faster than this (on average) run on the event loop's thread: handing
them to the instance's thread and back costs more than the call."""


@dataclass(frozen=True)
class Entry:
    """One batch's modelled call on one instance."""

    batch: int
    latency_s: float
    warmup_s: float  # added to the first call of each instance


class HostedModel:
    """The model as the server runs it: a real session, its inputs and its modelled figures."""

    def __init__(self, config: ServerConfig, session: Any, prof: Profile, host_load_s: float):
        self.config = config
        self.session = session
        self.profile = prof
        self.inputs = [InputSpec.from_ort(i) for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.catalog = default_catalog()
        self.precision = check_precision(config.precision)
        self._entries: dict[int, Entry | InvocationError] = {}
        base = self._estimate(prof.batch_size or 1)
        if not base.fits:
            raise does_not_fit(prof, base, catalog=self.catalog)
        self.base = base
        self.load_seconds = model_load_seconds(
            prof,
            host_load_s,
            instance=self.catalog.instance(config.instance_type),
            catalog=self.catalog,
        )
        self.accuracy = model_accuracy(prof, catalog=self.catalog).text

    @classmethod
    def load(cls, config: ServerConfig) -> HostedModel:
        import onnxruntime

        loaded = load_model(config.model_path)
        options = onnxruntime.SessionOptions()
        # each instance's thread runs its own calls: share the host's cores between them
        options.intra_op_num_threads = max(1, (os.cpu_count() or 1) // config.instance_count)
        t0 = time.perf_counter()
        session = onnxruntime.InferenceSession(
            config.model_path, options, providers=["CPUExecutionProvider"]
        )
        host_load = time.perf_counter() - t0
        return cls(config, session, make_profile(loaded), host_load)

    def _estimate(self, batch: int) -> Estimate:
        return endpoint_estimate(
            self.profile,
            self.config.instance_type,
            self.config.accelerator_type,
            batch_size=batch,
            precision=self.precision,
            catalog=self.catalog,
        )

    def entry(self, feed: dict[str, Any]) -> Entry:
        """The modelled call for this request's batch; a 400 when that batch does not fit."""
        first = feed[self.inputs[0].name]
        batch = int(first.shape[0]) if getattr(first, "ndim", 0) else 1
        found = self._entries.get(batch)
        if found is None:
            try:
                est = self._estimate(batch)
                if not est.fits:
                    raise does_not_fit(self.profile, est, catalog=self.catalog)
                found = Entry(
                    batch, est.latency_s, warmup_seconds(est.latency_s, catalog=self.catalog)
                )
            except EIError as error:
                found = InvocationError(400, "ValidationError", str(error))
            if len(self._entries) < 256:
                self._entries[batch] = found
        if isinstance(found, InvocationError):
            raise found
        return found

    def describe(self) -> dict[str, Any]:
        """What the kernel shows of the hosted model (modelled figures say so)."""
        return {
            "name": self.profile.name,
            "inputs": [
                {"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name} for s in self.inputs
            ],
            "outputs": self.output_names,
            "modelled_latency_s": self.base.latency_s,
            "memory_bytes": self.base.memory_needed_bytes,
            "memory_available_bytes": self.base.memory_available_bytes,
            "load_seconds": self.load_seconds,
            "accuracy": self.accuracy,
        }


class Scheduler:
    """The endpoint's instances and its bounded queue, on the server's event loop."""

    def __init__(self, model: HostedModel, config: ServerConfig, recorder: Recorder) -> None:
        self.model = model
        self.paced = config.clock == "paced"
        self.queue_size = config.queue_size
        self.recorder = recorder
        self._free = list(range(config.instance_count))
        self._warm = [False] * config.instance_count
        self._free_at = [0.0] * config.instance_count  # perf_counter when each is due to be free
        self._waiting: collections.deque[asyncio.Future[int]] = collections.deque()
        self._count = config.instance_count
        self.host_bound = 0  # calls this host computed slower than their modelled latency
        self._host_s = INLINE_S  # running mean of this host's time per call (first: threaded)
        # one thread per instance: its calls run one after another, as on its accelerator
        self._threads = ThreadPoolExecutor(config.instance_count, "ei-instance")

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def busy_instances(self) -> int:
        return self._count - len(self._free)

    async def _acquire(self) -> int:
        if self._free:
            return self._free.pop()
        if len(self._waiting) >= self.queue_size:
            raise InvocationError(
                503,
                "ServiceUnavailable",
                f"throttled: all {self._count} instance(s) are busy and {len(self._waiting)}"
                " requests are waiting; retry later, slow down or deploy more instances.",
            )
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return await waiter

    def _release(self, instance: int) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(instance)
                return
        self._free.append(instance)

    async def submit(self, feed: dict[str, Any], entry: Entry) -> tuple[list[Any], float, float]:
        """Serve one request: its outputs, its ModelLatency (the wait in the queue plus the
        modelled call) and the wall seconds it held the server from arrival to release.

        When this host computes a call slower than its modelled latency (host-bound), the
        instance is held until the host is done, so later requests wait longer, but the call
        itself still counts its modelled latency, as ``ei_widgets.device.sessions`` does.
        """
        arrived = time.perf_counter()
        instance = await self._acquire()
        try:
            # The instance's own timeline: a call that waited starts when the previous one was
            # due to end, not when this loop got round to it, so late wake-ups do not add up.
            started = max(arrived, self._free_at[instance])
            latency = entry.latency_s
            if not self._warm[instance]:
                self._warm[instance] = True
                latency += entry.warmup_s
            if self._host_s < INLINE_S:  # cheaper than the hop to the instance's thread
                outputs, host_s = self._run(feed)
            else:
                loop = asyncio.get_running_loop()
                outputs, host_s = await loop.run_in_executor(self._threads, self._run, feed)
            computed = time.perf_counter()
            self._host_s = 0.8 * self._host_s + 0.2 * host_s
            if host_s > latency:  # this host is slower than the modelled call
                self.host_bound += 1
            # Only the host's own compute can hold the instance past its modelled call; the
            # time this loop took to come round to the request is not the device's.
            due = started + max(latency, host_s)
            self._free_at[instance] = due
            if self.paced and due > computed:
                await asyncio.sleep(due - computed)
            released = time.perf_counter()
        finally:
            self._release(instance)
        self.recorder.busy(time.monotonic(), latency)
        return outputs, max(started - arrived, 0.0) + latency, released - arrived

    def _run(self, feed: dict[str, Any]) -> tuple[list[Any], float]:
        """The real call and this host's time on it (timed where it runs: the hop to a thread
        is not the host's compute)."""
        t0 = time.perf_counter()
        outputs = self.model.session.run(None, feed)
        return outputs, time.perf_counter() - t0

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
