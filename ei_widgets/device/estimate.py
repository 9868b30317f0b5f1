"""The latency and memory model: what one call of a profiled model costs on a simulated device.

For one call of batch ``B`` at precision ``P`` with runtime ``R`` (every constant named here lives
in ``device/catalog.toml`` with its unit, meaning and source; the fitted ones were fitted to
published EI measurements by ``benchmarks/calibrate.py``)::

    latency = network + compute + memory + launch + host
    network = rpc_seconds (EI only: the call crosses the network to the accelerator)
              + (input bytes + output bytes) / link bandwidth (on EI the client instance's
                network bandwidth, at most single_flow_gbps, x network_efficiency; on a whole
                GPU pcie_bytes_per_second)
    per device node n (ideal_n = flops_n / peak_P, the node's time at the device's peak):
        tensor ops:  c_n = ideal_n / tensor_efficiency[gpu][P] + fill[gpu]
                     so efficiency rises with the work a kernel has relative to the device: a
                     small batch-1 convolution cannot fill a GPU slice, a large one nearly can;
                     fill[gpu] = kernel_fill_seconds (a V100's) x the V100's achieved rate of
                     one SM / this GPU's (gpu_sm_f32_gflops x fp32 tensor_efficiency): a
                     kernel's last partial wave is one thread block's time on one SM
        other ops:   c_n = flops_n / (peak_F32 x compute_efficiency_other)
        m_n = bytes_n / (memory bandwidth x memory_efficiency)
        t_n = max(c_n, m_n); compute sums the nodes where c_n wins, memory the others
    launch  = device kernels (less no_kernel_ops) x kernel_launch_seconds
    host    = runtime_call_seconds[R] (the client framework's own per-call work)
              + ops the accelerator does not run, on the client's CPUs (EI) or the instance's
                (whole GPU), each with a round trip of its tensors over the link: host_ops for
                every runtime, and cpu_only_ops[R], the ops R has no accelerator kernel for
                (TensorFlow 1.x: NonMaxSuppression)
              + suppression_seconds_per_candidate per candidate of each non-max suppression
                (sequential work that no bigger device shortens; on the device too when it
                runs there; on a host, one core's work, scaled by 3.0 GHz / cpu_clock_ghz)

What does not grow with the accelerator (the call's round trip, the payload, the runtime's
per-call work, CPU-side ops and suppressions) is why a detector gains 1.58x per eia1 size where
its convolutions alone would gain 2x.

**Runtimes.** EI ran models through its client frameworks: ``mxnet`` (which also ran ONNX models
on EI, so it is the default for an ONNX graph), ``pytorch`` (the default for a PyTorch module),
``tensorflow`` (the default for a TensorFlow or Keras model) and ``keras``. A whole GPU can also
run a tuned runtime, ``tensorrt``: it fuses
``tuned_fused_ops`` into the kernel before them, reaches ``tuned_efficiency`` and has almost no
per-call overhead; published figures for one GPU differ by 10x between the two.

**Batch scaling.** A profile is computed at one batch ``b0`` (``profile.batch_size``; 1 when the
model has no batch dimension). For batch ``B`` every node's FLOPs and activation bytes (bytes read
and written minus the weights it reads, ``param_bytes``) are scaled by ``B / b0``; weights stay
fixed. Peak activation memory and the call's input/output payload scale the same way.

**Precision.** At fp16, floating-point weights and all activations take ``fp16_bytes_factor`` of
their profiled bytes, and tensor ops use the F16 (tensor-core) peak. The payload crossing the
network is what the caller sends (unchanged).

**CPU only.** The whole graph runs on the instance's vCPUs, by op kind: tensor ops at each
vCPU's vector peak (``cpu_peak_gflops_per_vcpu`` for its instance family: c5 and m5 have AVX-512,
t2 only AVX2) x ``cpu_efficiency`` plus the runtime's ``cpu_kernel_seconds`` each; memory-bound
ops (concats, batch norms, activations) at ``host_bytes_per_second_per_vcpu`` on the threads
the runtime uses (``cpu_threads_fraction``: PyTorch one per physical core); suppressions per
candidate at one core's clock; ``host_node_seconds`` per node, plus the runtime's per-call work;
fp16 brings nothing there.

**Memory needed** = weights at the precision + peak activations at the batch + runtime overhead
(``runtime_overhead_bytes`` + ``runtime_overhead_fraction`` of the first two).

**Throughput at concurrency c**: calls overlap their network and host parts but share the device,
the link and the host: ``B · min(c / latency, 1 / max(device busy, link busy, host busy))``.

Every figure is a model, labelled as such; its validated error against published measurements is
``Catalog.validation`` (shown wherever users decide). Per-profile arrays are built once (numpy) and
reused, so a full sweep costs a few milliseconds.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ei_widgets.common.units import format_bytes
from ei_widgets.device.catalog import Accelerator, Catalog, Instance, default_catalog
from ei_widgets.errors import DoesNotFitError, ProfileError, UnknownNameError, require_positive_int
from ei_widgets.models import dtypes
from ei_widgets.profiling.result import Profile

Precision = Literal["fp32", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
TERMS: tuple[str, ...] = ("network", "compute", "memory", "launch", "host")
RUNTIMES: tuple[str, ...] = ("mxnet", "pytorch", "tensorflow", "keras", "tensorrt")
TUNED_RUNTIMES: tuple[str, ...] = ("tensorrt",)
DEFAULT_HOST = "ml.t3.medium"


def check_batch(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or a ``ProfileError`` saying why not."""
    return require_positive_int(batch_size, "Batch size", ProfileError)


def check_precision(precision: Any) -> str:
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", str(precision), PRECISIONS)
    return str(precision)


def check_runtime(runtime: Any) -> str:
    if runtime not in RUNTIMES:
        raise UnknownNameError("runtime", str(runtime), RUNTIMES)
    return str(runtime)


FRAMEWORK_RUNTIMES: dict[str, str] = {"torch": "pytorch", "tensorflow": "tensorflow"}
"""The EI client runtime of a framework's models. TensorFlow and Keras models ran on EI through
EI's TensorFlow (EIPredictor, or TF 1.15's EIKerasModel: rows D2-D4 of the calibration); the
``keras`` runtime is Keras's own ``model.predict`` without EI, whose per-call overhead the
calibration fitted on CPUs and whole GPUs."""


def default_runtime(profile: Profile) -> str:
    """The EI client framework that would have run ``profile``: PyTorch for a PyTorch module,
    TensorFlow for a TensorFlow or Keras model, MXNet for everything else (EI ran ONNX models
    through MXNet, and MXNet models come as ONNX files)."""
    info = profile.framework
    return FRAMEWORK_RUNTIMES.get(info.framework, "mxnet") if info is not None else "mxnet"


# ---------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True)
class Device:
    """What the model needs to know of a target: an EI accelerator, a whole GPU or CPUs."""

    name: str
    kind: str  # "accelerator" | "gpu" | "cpu"
    gpu: str | None  # the GPU (or the GPU an EI accelerator is a slice of); None on CPUs
    f32_flops: float
    f16_flops: float
    bytes_per_second: float
    memory_bytes: int
    call_seconds: float  # the network round trip of a call (EI); 0 for local devices
    link_bytes_per_second: float  # math.inf when there is no link (CPU-only)
    host: Instance  # the CPUs that run the client and host-side ops (the whole target on "cpu")

    def peak_flops(self, precision: str) -> float:
        return self.f16_flops if precision == "fp16" else self.f32_flops


def cpu_flops(instance: Instance, catalog: Catalog) -> float:
    """Achieved FLOP/s of a model's kernels on all of ``instance``'s vCPUs (modelled)."""
    peaks: dict[str, float] = catalog.value("cpu_peak_gflops_per_vcpu")
    try:
        peak = float(peaks[instance.family])
    except KeyError:
        raise UnknownNameError("instance family", instance.family, peaks) from None
    return instance.vcpus * peak * 1e9 * float(catalog.value("cpu_efficiency"))


SEQUENTIAL_REFERENCE_GHZ = 3.0  # suppression_seconds_per_candidate is a core at this clock's


def host_clock_factor(instance: Instance, catalog: Catalog) -> float:
    """How much longer sequential work takes on one of ``instance``'s cores than on a 3.0 GHz
    one (``cpu_clock_ghz`` of its family)."""
    clocks: dict[str, float] = catalog.value("cpu_clock_ghz")
    try:
        return SEQUENTIAL_REFERENCE_GHZ / float(clocks[instance.family])
    except KeyError:
        raise UnknownNameError("instance family", instance.family, clocks) from None


def device(
    target: str | Accelerator | Instance | Device,
    *,
    instance: str | Instance | None = None,
    catalog: Catalog | None = None,
) -> Device:
    """Resolve a name, accelerator or instance to a :class:`Device`.

    An accelerator runs attached to ``instance`` (a notebook instance, ``ml.t3.medium`` by
    default); a ``gpu`` instance is a whole GPU; a ``notebook`` or ``cpu`` instance is CPU-only.
    """
    if isinstance(target, Device):
        return target
    cat = catalog or default_catalog()
    if isinstance(target, str):
        if target in cat.accelerators:
            target = cat.accelerators[target]
        elif target in cat.instances:
            target = cat.instances[target]
        else:
            raise UnknownNameError(
                "accelerator or instance", target, [*cat.accelerators, *cat.instances]
            )
    if isinstance(target, Instance) and target.role != "gpu":
        return _cpu_device(target, cat)
    # An accelerator and a whole-GPU instance are both a GPU, given in TFLOP/s and GB/s.
    if isinstance(target, Accelerator):
        host = cat.notebook_instance(instance) if isinstance(instance, str) else instance
        host = host or cat.instance(DEFAULT_HOST)
        # One call is one TCP flow, and EC2 caps a single flow below the instance's bandwidth.
        gbps = min(host.network_gbps, float(cat.value("single_flow_gbps")))
        link = gbps * 1e9 / 8 * float(cat.value("network_efficiency"))
        kind, call_seconds = "accelerator", float(cat.value("rpc_seconds"))
        f32_tflops, f16_tflops = target.f32_tflops, target.f16_tflops
        bandwidth_gbps, memory_bytes = target.memory_bandwidth_gbps, target.memory_bytes
    else:
        assert target.gpu_f32_tflops and target.gpu_f16_tflops and target.gpu_memory_bytes
        assert target.gpu_memory_bandwidth_gbps
        host, link = target, float(cat.value("pcie_bytes_per_second"))
        kind, call_seconds = "gpu", 0.0
        f32_tflops, f16_tflops = target.gpu_f32_tflops, target.gpu_f16_tflops
        bandwidth_gbps, memory_bytes = target.gpu_memory_bandwidth_gbps, target.gpu_memory_bytes
    return Device(
        name=target.name,
        kind=kind,
        gpu=target.gpu,
        f32_flops=f32_tflops * 1e12,
        f16_flops=f16_tflops * 1e12,
        bytes_per_second=bandwidth_gbps * 1e9,
        memory_bytes=memory_bytes,
        call_seconds=call_seconds,
        link_bytes_per_second=link,
        host=host,
    )


def _cpu_device(target: Instance, cat: Catalog) -> Device:
    """A CPU-only instance: its own vCPUs run the model."""
    flops = cpu_flops(target, cat)
    return Device(
        name=target.name,
        kind="cpu",
        gpu=None,
        f32_flops=flops,
        f16_flops=flops,  # a CPU runtime gains nothing from fp16
        bytes_per_second=target.vcpus * float(cat.value("host_bytes_per_second_per_vcpu")),
        memory_bytes=target.memory_bytes,
        call_seconds=0.0,
        link_bytes_per_second=math.inf,
        host=target,
    )


# ---------------------------------------------------------------------------------------------
# Per-profile arrays


def _tensor_bytes(shape: Sequence[Any] | None, dtype: str, b0: int) -> int:
    if shape is None:
        return 0
    n, batch_used = 1, False
    for d in shape:
        if isinstance(d, int) and d >= 0:
            n *= d
        elif not batch_used:
            n, batch_used = n * b0, True  # the first free dimension is the batch
    return dtypes.nbytes_of(dtype, n, unknown_bits=32)  # unknown types: as float32


class _Arrays:
    """The profile's per-node facts as numpy arrays, with each node's role on a device.

    Depends on the catalog's op-type sets only, never on its fitted numbers, so a calibration
    that tries many constants reuses one instance.
    """

    def __init__(self, profile: Profile, op_sets: tuple[frozenset[str], ...]) -> None:
        tensor_ops, no_kernel, host_ops, fused_ops, cpu_only = op_sets
        nodes = [n for n in profile.nodes if n.op_type not in no_kernel]
        kinds = [n.op_type for n in nodes]
        self.on_host = np.array([k in host_ops or k in cpu_only for k in kinds], dtype=bool)
        # Candidates a non-max suppression weighs: a box (4 floats) and a score each.
        self.candidates = np.array(
            [n.bytes_read / SUPPRESSION_CANDIDATE_BYTES if k in SUPPRESSION_OPS else 0.0
             for n, k in zip(nodes, kinds, strict=True)],
            dtype=np.float64,
        )  # fmt: skip
        self.tensor = np.array([k in tensor_ops for k in kinds], dtype=bool)
        self.fused = np.array([k in fused_ops for k in kinds], dtype=bool)
        self.flops = np.array([n.flops for n in nodes], dtype=np.float64)
        self.params = np.array([n.param_bytes for n in nodes], dtype=np.float64)
        self.total = np.array([n.bytes_read + n.bytes_written for n in nodes], dtype=np.float64)
        self.acts = np.maximum(self.total - self.params, 0.0)
        self.n_nodes = len(nodes)
        self.n_host = int(self.on_host.sum())
        self.b0 = profile.batch_size or 1
        b0 = self.b0
        self.payload = sum(
            _tensor_bytes(profile.bound_inputs.get(t.name, t.shape), t.dtype, b0)
            for t in profile.inputs
        ) + sum(_tensor_bytes(t.shape, t.dtype, b0) for t in profile.outputs)
        floats = sum(g.bytes for g in profile.params if g.dtype.startswith(("float", "bfloat")))
        self.param_float_bytes = floats
        self.param_other_bytes = profile.param_bytes - floats
        self.peak_acts = profile.peak_activation_bytes


_CACHE: dict[tuple[int, tuple[frozenset[str], ...]], tuple[weakref.ref[Profile], _Arrays]] = {}
_CACHE_LOCK = threading.Lock()
_OP_SETS = ("tensor_core_ops", "no_kernel_ops", "host_ops", "tuned_fused_ops")
SUPPRESSION_OPS = frozenset({"NonMaxSuppression"})
SUPPRESSION_CANDIDATE_BYTES = 20  # one box (4 x float32) and one score (float32)


def cpu_only_ops(runtime: str, catalog: Catalog) -> frozenset[str]:
    """Op types ``runtime`` has no accelerator kernel for (``cpu_only_ops``): on EI the client
    instance runs them, on a whole GPU the instance's CPUs."""
    table: dict[str, list[str]] = catalog.value("cpu_only_ops")
    return frozenset(table.get(runtime, ()))


def _arrays(profile: Profile, catalog: Catalog, runtime: str | None = None) -> _Arrays:
    cpu_only = cpu_only_ops(runtime or default_runtime(profile), catalog)
    op_sets = (*(frozenset(catalog.value(name)) for name in _OP_SETS), cpu_only)
    key = (id(profile), op_sets)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is profile:
        return hit[1]
    arrays = _Arrays(profile, op_sets)
    with _CACHE_LOCK:
        if len(_CACHE) > 256:  # drop entries whose profile is gone; keeps the cache bounded
            for k in [k for k, v in _CACHE.items() if v[0]() is None]:
                del _CACHE[k]
        _CACHE[key] = (weakref.ref(profile), arrays)
    return arrays


def host_op_count(
    profile: Profile, *, catalog: Catalog | None = None, runtime: str | None = None
) -> int:
    """How many of the profile's nodes run on the host (``host_ops``, and the runtime's
    ``cpu_only_ops``; the default runtime's when none is given) rather than the device."""
    return _arrays(profile, catalog or default_catalog(), runtime).n_host


# ---------------------------------------------------------------------------------------------
# Estimates


@dataclass(frozen=True, slots=True)
class Estimate:
    """Simulated figures for one call (modelled, never measured)."""

    target: str
    kind: str  # "accelerator" | "gpu" | "cpu"
    instance: str  # the host instance
    batch_size: int
    precision: str
    network_s: float
    compute_s: float
    memory_s: float
    launch_s: float
    host_s: float
    busy_s: float  # the time the busiest shared resource (device, link, host) spends per call
    flops: float
    peak_flops: float
    weights_bytes: int
    activation_bytes: int
    overhead_bytes: int
    memory_available_bytes: int
    concurrency: int = 1
    runtime: str = "mxnet"

    @property
    def latency_s(self) -> float:
        return self.network_s + self.compute_s + self.memory_s + self.launch_s + self.host_s

    @property
    def latency_ms(self) -> float:
        return self.latency_s * 1e3

    @property
    def breakdown(self) -> dict[str, float]:
        """Seconds per term: network, compute, memory, launch, host."""
        return {
            "network": self.network_s,
            "compute": self.compute_s,
            "memory": self.memory_s,
            "launch": self.launch_s,
            "host": self.host_s,
        }

    @property
    def bound(self) -> str:
        """The term that takes the most time."""
        parts = self.breakdown
        return max(parts, key=lambda k: parts[k])

    def throughput(self, concurrency: int = 1) -> float:
        """Inferences per second with ``concurrency`` calls in flight."""
        require_positive_int(concurrency, "Concurrency", ProfileError)
        latency = self.latency_s
        if latency <= 0:
            return math.inf
        return self.batch_size * min(concurrency / latency, 1.0 / max(self.busy_s, 1e-12))

    @property
    def throughput_per_s(self) -> float:
        return self.throughput(self.concurrency)

    @property
    def memory_needed_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.memory_needed_bytes <= self.memory_available_bytes

    @property
    def utilisation(self) -> float:
        """Achieved FLOP/s over the precision's peak, during one call."""
        latency = self.latency_s
        return self.flops / latency / self.peak_flops if latency > 0 else 0.0

    def memory_text(self) -> str:
        return (
            f"{format_bytes(self.memory_needed_bytes)} (weights {format_bytes(self.weights_bytes)}"
            f" + activations at batch {self.batch_size} {format_bytes(self.activation_bytes)}"
            f" + runtime overhead {format_bytes(self.overhead_bytes)})"
        )


def _efficiency(catalog: Catalog, name: str, gpu: str | None, precision: str) -> float:
    table: dict[str, dict[str, float]] = catalog.value(name)
    try:
        return float(table[gpu or ""][precision])
    except KeyError:
        raise UnknownNameError(f"GPU in {name}", str(gpu), table) from None


FILL_REFERENCE_GPU = "V100"  # kernel_fill_seconds is this GPU's


def kernel_fill_seconds(catalog: Catalog, gpu: str | None) -> float:
    """A tensor kernel's fill on ``gpu``: ``kernel_fill_seconds`` (a V100's) scaled by how much
    longer one thread block takes on one of ``gpu``'s SMs (``gpu_sm_f32_gflops`` at its
    fp32 ``tensor_efficiency``). A GPU without an SM figure keeps the V100's."""
    fill = float(catalog.value("kernel_fill_seconds"))
    per_sm: dict[str, float] = catalog.value("gpu_sm_f32_gflops")
    if gpu not in per_sm or gpu == FILL_REFERENCE_GPU:
        return fill

    def rate(name: str) -> float:
        return float(per_sm[name]) * _efficiency(catalog, "tensor_efficiency", name, "fp32")

    return fill * rate(FILL_REFERENCE_GPU) / rate(gpu)


def estimate_batches(
    profile: Profile,
    target: str | Accelerator | Instance | Device,
    batch_sizes: Iterable[int],
    *,
    precision: str = "fp32",
    instance: str | Instance | None = None,
    concurrency: int = 1,
    runtime: str | None = None,
    catalog: Catalog | None = None,
) -> list[Estimate]:
    """One :class:`Estimate` per batch size, computed together (vectorised over batches).

    ``runtime`` defaults to :func:`default_runtime`; ``"tensorrt"`` is for whole GPUs only.
    """
    cat = catalog or default_catalog()
    precision = check_precision(precision)
    runtime = default_runtime(profile) if runtime is None else check_runtime(runtime)
    batches = [check_batch(b) for b in batch_sizes]
    require_positive_int(concurrency, "Concurrency", ProfileError)
    dev = device(target, instance=instance, catalog=cat)
    tuned = runtime in TUNED_RUNTIMES
    if tuned and dev.kind != "gpu":
        raise ProfileError(f"runtime {runtime!r} runs on a whole GPU only, not on {dev.name}")
    a = _arrays(profile, cat, runtime)
    c = cat.value
    fp16 = precision == "fp16" and dev.kind != "cpu"
    bf = float(c("fp16_bytes_factor")) if fp16 else 1.0
    scale = np.asarray(batches, dtype=np.float64) / a.b0
    col = scale[:, None]
    host_flops = cpu_flops(dev.host, cat)
    host_bw = dev.host.vcpus * float(c("host_bytes_per_second_per_vcpu"))
    host_node_s = float(c("host_node_seconds"))
    call_s = float(c("runtime_call_seconds")[runtime])
    per_candidate = float(c("suppression_seconds_per_candidate"))
    # A suppression on the host is one core's sequential work: it runs at that core's clock.
    host_per_candidate = per_candidate * host_clock_factor(dev.host, cat)

    if dev.kind == "cpu":
        # Every node on the instance's CPUs, one after another: tensor ops at cpu_efficiency of
        # the vector peak plus the runtime's fixed cpu_kernel_seconds each (set-up, layout
        # reorders, the threads' fork and join), other ops at the runtime's memory bandwidth on
        # the threads it uses, suppressions at their per-candidate cost (one core's clock).
        threads = float(c("cpu_threads_fraction").get(runtime, 1.0))
        kernel_s = float(c("cpu_kernel_seconds")[runtime])
        comp = np.where(a.tensor, col * a.flops / dev.f32_flops + kernel_s, 0.0)
        comp = np.where(a.flops > 0, comp, 0.0)
        mem = (col * a.acts + a.params) / (dev.bytes_per_second * threads)
        mem = np.where(a.tensor, 0.0, mem)
        launch = np.full_like(scale, a.n_nodes * host_node_s)
        host = call_s + scale * float(a.candidates.sum()) * host_per_candidate
    else:
        precision_used = "fp16" if fp16 else "fp32"
        eff_name = "tuned_efficiency" if tuned else "tensor_efficiency"
        eff_max = _efficiency(cat, eff_name, dev.gpu, precision_used)
        fill_s = kernel_fill_seconds(cat, dev.gpu)
        device_nodes = ~a.on_host & ~a.fused if tuned else ~a.on_host
        tensor, flops = a.tensor[device_nodes], a.flops[device_nodes]
        ideal = col * flops / (dev.f16_flops if fp16 else dev.f32_flops)
        comp = np.where(
            tensor,
            ideal / eff_max + fill_s,
            col * flops / (dev.f32_flops * float(c("compute_efficiency_other"))),
        )
        comp = np.where(flops > 0, comp, 0.0)
        mem_bw = dev.bytes_per_second * float(c("memory_efficiency"))
        mem = (col * a.acts[device_nodes] + a.params[device_nodes]) * (bf / mem_bw)
        launch = np.full_like(scale, device_nodes.sum() * float(c("kernel_launch_seconds")))
        # The runtime's own per-call work, plus host ops on the client's CPUs, each with one
        # round trip of its tensors over the link.
        on_host = a.on_host
        h_flops, h_total = float(a.flops[on_host].sum()), float(a.total[on_host].sum())
        host = (
            call_s
            + np.maximum(scale * h_flops / host_flops, scale * h_total / host_bw)
            + scale * float(a.candidates[on_host].sum()) * host_per_candidate
            + a.n_host * (host_node_s + dev.call_seconds)
            + scale * float(a.acts[on_host].sum()) / dev.link_bytes_per_second
        )
        # A suppression the device runs costs the same work per candidate there: it is
        # sequential (each kept box decides the next), so a bigger device does not shorten it.
        comp = comp + col * a.candidates[device_nodes] * per_candidate
    node_t = np.maximum(comp, mem)
    compute = np.where(comp >= mem, node_t, 0.0).sum(axis=1)
    memory = node_t.sum(axis=1) - compute
    link = scale * a.payload / dev.link_bytes_per_second
    network = dev.call_seconds + link
    busy = np.maximum(np.maximum(compute + memory + launch, link), host)
    if dev.kind == "cpu":
        busy = compute + memory + launch + host  # one call uses every core

    weights = int(a.param_float_bytes * bf + a.param_other_bytes)
    overhead_fixed = int(c("runtime_overhead_bytes"))
    overhead_frac = float(c("runtime_overhead_fraction"))
    peak = dev.peak_flops("fp16" if fp16 else "fp32")
    total_flops = float(a.flops.sum())
    out = []
    for i, b in enumerate(batches):
        acts = int(a.peak_acts * scale[i] * bf)
        out.append(
            Estimate(
                target=dev.name,
                kind=dev.kind,
                instance=dev.host.name,
                batch_size=b,
                precision=precision,
                network_s=float(network[i]),
                compute_s=float(compute[i]),
                memory_s=float(memory[i]),
                launch_s=float(launch[i]),
                host_s=float(host[i]),
                busy_s=float(busy[i]),
                flops=total_flops * float(scale[i]),
                peak_flops=peak,
                weights_bytes=weights,
                activation_bytes=acts,
                overhead_bytes=overhead_fixed + int(overhead_frac * (weights + acts)),
                memory_available_bytes=dev.memory_bytes,
                concurrency=concurrency,
                runtime=runtime,
            )
        )
    return out


def estimate(
    profile: Profile,
    target: str | Accelerator | Instance | Device,
    *,
    batch_size: int | None = None,
    precision: str = "fp32",
    instance: str | Instance | None = None,
    concurrency: int = 1,
    runtime: str | None = None,
    catalog: Catalog | None = None,
) -> Estimate:
    """The simulated cost of one call of ``profile`` on ``target``.

    ``batch_size`` defaults to the profile's own batch (1 without a batch dimension); ``runtime``
    to the EI client framework that would have run the model (:func:`default_runtime`).
    """
    batch = (profile.batch_size or 1) if batch_size is None else batch_size
    return estimate_batches(
        profile,
        target,
        [batch],
        precision=precision,
        instance=instance,
        concurrency=concurrency,
        runtime=runtime,
        catalog=catalog,
    )[0]


# ---------------------------------------------------------------------------------------------
# Load, warm-up and memory


def model_load_seconds(
    profile: Profile,
    host_load_seconds: float,
    *,
    instance: str | Instance | None = None,
    catalog: Catalog | None = None,
) -> float:
    """Simulated time to load the model onto an EI accelerator attached to ``instance``.

    The measured host load times ``model_load_factor``, plus ``model_load_fixed_seconds``, plus the
    weights crossing the instance's network to the accelerator.
    """
    cat = catalog or default_catalog()
    link = device(next(iter(cat.accelerators.values())), instance=instance, catalog=cat)
    return (
        float(cat.value("model_load_fixed_seconds"))
        + max(host_load_seconds, 0.0) * float(cat.value("model_load_factor"))
        + profile.param_bytes / link.link_bytes_per_second
    )


def warmup_seconds(latency_s: float, *, catalog: Catalog | None = None) -> float:
    """Extra time of the first call on a freshly loaded model."""
    c = (catalog or default_catalog()).value
    return float(c("warmup_fixed_seconds")) + latency_s * (float(c("warmup_factor")) - 1.0)


def smallest_fitting(
    profile: Profile,
    *,
    batch_size: int | None = None,
    precision: str = "fp32",
    catalog: Catalog | None = None,
) -> Accelerator | None:
    """The accelerator with the least memory (then the lowest price) that holds the model."""
    cat = catalog or default_catalog()
    for acc in sorted(cat.accelerators.values(), key=lambda a: (a.memory_bytes, a.price_per_hour)):
        if estimate(profile, acc, batch_size=batch_size, precision=precision, catalog=cat).fits:
            return acc
    return None


def does_not_fit(
    profile: Profile, est: Estimate, *, catalog: Catalog | None = None
) -> DoesNotFitError:
    """The error for an estimate that does not fit: what is needed, what there is, what would."""
    best = smallest_fitting(
        profile, batch_size=est.batch_size, precision=est.precision, catalog=catalog
    )
    if best is not None:
        size = format_bytes(best.memory_bytes)
        hint = f"The smallest accelerator that fits is {best.name} ({size})."
    else:
        hint = "No accelerator fits it at this batch; try a smaller batch"
        hint += " or fp16." if est.precision == "fp32" else "."
    return DoesNotFitError(
        f"Model {profile.name!r} does not fit on {est.target} at batch {est.batch_size}, "
        f"{est.precision}: it needs {est.memory_text()}; {est.target} has "
        f"{format_bytes(est.memory_available_bytes)}. {hint}"
    )


def check_fits(profile: Profile, est: Estimate, *, catalog: Catalog | None = None) -> None:
    """Raise :class:`DoesNotFitError` when ``est`` needs more memory than the target has."""
    if not est.fits:
        raise does_not_fit(profile, est, catalog=catalog)
