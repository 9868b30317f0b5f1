"""The latency and memory model: what one call of a profiled model costs on a simulated device.

For one call of batch ``B`` at precision ``P`` (every constant named here lives in
``data/catalog.toml`` with its description and source)::

    latency = network  +  compute + memory  +  launch  +  host
    network = call overhead (rpc_seconds on EI, local_call_seconds on a whole GPU)
              + (input bytes + output bytes) / link bandwidth (network_bytes_per_second on EI,
                pcie_bytes_per_second on a whole GPU)
    per device node n:
        t_n = max(flops_n / (peak_P · eff(op)), bytes_n / (bandwidth · memory_efficiency))
        compute = Σ t_n over nodes where the FLOPs term wins, memory = Σ t_n over the others
        peak_P is the F16 (tensor-core) peak only for tensor_core_ops at fp16, F32 otherwise
    launch  = device nodes (less no_kernel_ops) · kernel_launch_seconds
    host    = Σ over host_ops nodes of their host CPU time (host_gflops_per_vcpu,
              host_bytes_per_second_per_vcpu) + one extra round trip of their tensors

**Batch scaling.** A profile is computed at one batch ``b0`` (``profile.batch_size``; 1 when the
model has no batch dimension). For batch ``B`` every node's FLOPs and activation bytes (bytes read
and written minus the weights it reads, ``param_bytes``) are scaled by ``B / b0``; weights stay
fixed. Peak activation memory and the call's input/output payload scale the same way.

**Precision.** At fp16, floating-point weights and all activations take ``fp16_bytes_factor`` of
their profiled bytes. The payload crossing the network is what the caller sends (unchanged).

**Memory needed** = weights at the precision + peak activations at the batch + runtime overhead
(``runtime_overhead_bytes`` + ``runtime_overhead_fraction`` of the first two).

**Throughput at concurrency c**: calls overlap their network and host parts but share the device,
the link and the host: ``B · min(c / latency, 1 / max(device busy, link busy, host busy))``.

**CPU-only**: the whole graph runs on the instance's vCPUs (``host_gflops_per_vcpu`` ×
vCPUs, ``host_bytes_per_second_per_vcpu`` × vCPUs, ``host_node_seconds`` per node,
``host_call_seconds`` per call); fp16 brings nothing there. It is a model, labelled as such.

Per-profile arrays are built once (numpy) and reused, so a full sweep costs a few milliseconds.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ei_widgets.catalog import Accelerator, Catalog, Instance, default_catalog
from ei_widgets.errors import DoesNotFitError, ProfileError, UnknownNameError

if TYPE_CHECKING:  # only for annotations: keeps the core free of the model loaders
    from ei_widgets.profile import Profile

Precision = Literal["fp32", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
TERMS: tuple[str, ...] = ("network", "compute", "memory", "launch", "host")
DEFAULT_HOST = "ml.t3.medium"


def check_batch(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or a ``ProfileError`` saying why not."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ProfileError(f"batch size must be a positive integer, got {batch_size!r}")
    if batch_size <= 0:
        raise ProfileError(f"batch size must be a positive integer, got {batch_size}")
    return int(batch_size)


def check_precision(precision: Any) -> str:
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", str(precision), PRECISIONS)
    return str(precision)


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


# ---------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True)
class Device:
    """What the model needs to know of a target: an EI accelerator, a whole GPU or CPUs."""

    name: str
    kind: str  # "accelerator" | "gpu" | "cpu"
    f32_flops: float
    f16_flops: float
    bytes_per_second: float
    memory_bytes: int
    call_seconds: float
    link_bytes_per_second: float  # math.inf when there is no link (CPU-only)
    launch_seconds: float
    host: Instance  # the CPUs that run host-side ops (the whole target when kind == "cpu")

    def peak_flops(self, precision: str) -> float:
        return self.f16_flops if precision == "fp16" else self.f32_flops


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
    c = cat.value
    if isinstance(target, str):
        if target in cat.accelerators:
            target = cat.accelerators[target]
        elif target in cat.instances:
            target = cat.instances[target]
        else:
            raise UnknownNameError(
                "accelerator or instance", target, [*cat.accelerators, *cat.instances]
            )
    if isinstance(target, Accelerator):
        host = cat.notebook_instance(instance) if isinstance(instance, str) else instance
        host = host or cat.instance(DEFAULT_HOST)
        return Device(
            name=target.name,
            kind="accelerator",
            f32_flops=target.f32_tflops * 1e12,
            f16_flops=target.f16_tflops * 1e12,
            bytes_per_second=target.memory_bandwidth_gbps * 1e9,
            memory_bytes=target.memory_bytes,
            call_seconds=float(c("rpc_seconds")),
            link_bytes_per_second=float(c("network_bytes_per_second")),
            launch_seconds=float(c("kernel_launch_seconds")),
            host=host,
        )
    if target.role == "gpu":
        assert target.gpu_f32_tflops and target.gpu_f16_tflops and target.gpu_memory_bytes
        assert target.gpu_memory_bandwidth_gbps
        return Device(
            name=target.name,
            kind="gpu",
            f32_flops=target.gpu_f32_tflops * 1e12,
            f16_flops=target.gpu_f16_tflops * 1e12,
            bytes_per_second=target.gpu_memory_bandwidth_gbps * 1e9,
            memory_bytes=target.gpu_memory_bytes,
            call_seconds=float(c("local_call_seconds")),
            link_bytes_per_second=float(c("pcie_bytes_per_second")),
            launch_seconds=float(c("kernel_launch_seconds")),
            host=target,
        )
    flops = target.vcpus * float(c("host_gflops_per_vcpu")) * 1e9
    return Device(
        name=target.name,
        kind="cpu",
        f32_flops=flops,
        f16_flops=flops,  # onnxruntime on CPU gains nothing from fp16
        bytes_per_second=target.vcpus * float(c("host_bytes_per_second_per_vcpu")),
        memory_bytes=target.memory_bytes,
        call_seconds=float(c("host_call_seconds")),
        link_bytes_per_second=math.inf,
        launch_seconds=float(c("host_node_seconds")),
        host=target,
    )


# ---------------------------------------------------------------------------------------------
# Per-profile arrays


def _itemsize(dtype: str) -> int:
    try:
        return int(np.dtype(dtype).itemsize) or 4
    except TypeError:
        return 4


def _tensor_bytes(shape: Sequence[Any] | None, dtype: str, b0: int) -> int:
    if shape is None:
        return 0
    n, batch_used = 1, False
    for d in shape:
        if isinstance(d, int) and d >= 0:
            n *= d
        elif not batch_used:
            n, batch_used = n * b0, True  # the first free dimension is the batch
    return n * _itemsize(dtype)


class _Arrays:
    """The profile's per-node facts as numpy arrays, split into device and host nodes."""

    def __init__(self, profile: Profile, catalog: Catalog) -> None:
        c = catalog.value
        tensor_ops = set(c("tensor_core_ops"))
        no_kernel = set(c("no_kernel_ops"))
        host_ops = set(c("host_ops"))
        effs: dict[str, float] = dict(c("compute_efficiency"))
        eff_default = float(c("compute_efficiency_default"))
        nodes = [n for n in profile.nodes if n.op_type not in no_kernel]
        on_host = np.array([n.op_type in host_ops for n in nodes], dtype=bool)
        flops = np.array([n.flops for n in nodes], dtype=np.float64)
        params = np.array([n.param_bytes for n in nodes], dtype=np.float64)
        total = np.array([n.bytes_read + n.bytes_written for n in nodes], dtype=np.float64)
        acts = np.maximum(total - params, 0.0)
        tensor = np.array([n.op_type in tensor_ops for n in nodes], dtype=bool)
        eff = np.array([effs.get(n.op_type, eff_default) for n in nodes], dtype=np.float64)
        dev = ~on_host
        self.b0 = profile.batch_size or 1
        self.all_flops, self.all_acts, self.all_params = flops, acts, params
        self.d_eff_flops_tensor = np.where(tensor, flops / eff, 0.0)[dev]
        self.d_eff_flops_other = np.where(tensor, 0.0, flops / eff)[dev]
        self.d_acts, self.d_params = acts[dev], params[dev]
        self.n_device = int(dev.sum())
        self.n_nodes = len(nodes)
        self.h_flops, self.h_bytes = float(flops[on_host].sum()), float(total[on_host].sum())
        self.h_acts, self.n_host = float(acts[on_host].sum()), int(on_host.sum())
        self.flops = float(flops.sum())
        b0 = self.b0
        self.payload = sum(
            _tensor_bytes(profile.bound_inputs.get(t.name, t.shape), t.dtype, b0)
            for t in profile.inputs
        ) + sum(_tensor_bytes(t.shape, t.dtype, b0) for t in profile.outputs)
        floats = sum(g.bytes for g in profile.params if g.dtype.startswith(("float", "bfloat")))
        self.param_float_bytes = floats
        self.param_other_bytes = profile.param_bytes - floats
        self.peak_acts = profile.peak_activation_bytes


_CACHE: dict[tuple[int, int], tuple[weakref.ref[Profile], Catalog, _Arrays]] = {}
_CACHE_LOCK = threading.Lock()


def _arrays(profile: Profile, catalog: Catalog) -> _Arrays:
    key = (id(profile), id(catalog))
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is profile and hit[1] is catalog:
        return hit[2]
    arrays = _Arrays(profile, catalog)
    with _CACHE_LOCK:
        if len(_CACHE) > 256:  # drop entries whose profile is gone; keeps the cache bounded
            for k in [k for k, v in _CACHE.items() if v[0]() is None]:
                del _CACHE[k]
        _CACHE[key] = (weakref.ref(profile), catalog, arrays)
    return arrays


def host_op_count(profile: Profile, *, catalog: Catalog | None = None) -> int:
    """How many of the profile's nodes run on the host (``host_ops``) rather than the device."""
    return _arrays(profile, catalog or default_catalog()).n_host


# ---------------------------------------------------------------------------------------------
# Estimates


@dataclass(frozen=True)
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
        if concurrency < 1:
            raise ProfileError(f"concurrency must be >= 1, got {concurrency}")
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


def estimate_batches(
    profile: Profile,
    target: str | Accelerator | Instance | Device,
    batch_sizes: Iterable[int],
    *,
    precision: str = "fp32",
    instance: str | Instance | None = None,
    concurrency: int = 1,
    catalog: Catalog | None = None,
) -> list[Estimate]:
    """One :class:`Estimate` per batch size, computed together (vectorised over batches)."""
    cat = catalog or default_catalog()
    precision = check_precision(precision)
    batches = [check_batch(b) for b in batch_sizes]
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ProfileError(f"concurrency must be a positive integer, got {concurrency!r}")
    dev = device(target, instance=instance, catalog=cat)
    a = _arrays(profile, cat)
    c = cat.value
    fp16 = precision == "fp16" and dev.kind != "cpu"
    bf = float(c("fp16_bytes_factor")) if fp16 else 1.0
    scale = np.asarray(batches, dtype=np.float64) / a.b0
    col = scale[:, None]
    host_cpu_flops = dev.host.vcpus * float(c("host_gflops_per_vcpu")) * 1e9
    host_cpu_bw = dev.host.vcpus * float(c("host_bytes_per_second_per_vcpu"))
    host_node_s = float(c("host_node_seconds"))
    mem_bw = dev.bytes_per_second * (1.0 if dev.kind == "cpu" else float(c("memory_efficiency")))

    if dev.kind == "cpu":
        # Every node on the host CPUs; the efficiency table is a GPU-kernel fact, so use raw FLOPs.
        comp = col * a.all_flops / dev.f32_flops
        mem = (col * a.all_acts + a.all_params) / mem_bw
        n_kernels = a.n_nodes
        host = np.zeros_like(scale)
    else:
        tensor_peak = dev.f16_flops if fp16 else dev.f32_flops
        comp = col * (a.d_eff_flops_tensor / tensor_peak + a.d_eff_flops_other / dev.f32_flops)
        mem = (col * a.d_acts + a.d_params) * (bf / mem_bw)
        n_kernels = a.n_device
        # Host ops: their CPU time plus one round trip of their tensors over the link.
        host = (
            np.maximum(scale * a.h_flops / host_cpu_flops, scale * a.h_bytes / host_cpu_bw)
            + a.n_host * (host_node_s + dev.call_seconds)
            + scale * a.h_acts / dev.link_bytes_per_second
        )
    node_t = np.maximum(comp, mem)
    compute = np.where(comp >= mem, node_t, 0.0).sum(axis=1)
    memory = node_t.sum(axis=1) - compute
    launch = n_kernels * dev.launch_seconds
    link = scale * a.payload / dev.link_bytes_per_second
    network = dev.call_seconds + link
    busy = np.maximum(np.maximum(compute + memory + launch, link), host)
    if dev.kind == "cpu":
        busy = compute + memory + launch + network  # one call uses every core

    weights = int(a.param_float_bytes * bf + a.param_other_bytes)
    overhead_fixed = int(c("runtime_overhead_bytes"))
    overhead_frac = float(c("runtime_overhead_fraction"))
    peak = dev.peak_flops("fp16" if fp16 else "fp32")
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
                launch_s=float(launch),
                host_s=float(host[i]),
                busy_s=float(busy[i]),
                flops=a.flops * float(scale[i]),
                peak_flops=peak,
                weights_bytes=weights,
                activation_bytes=acts,
                overhead_bytes=overhead_fixed + int(overhead_frac * (weights + acts)),
                memory_available_bytes=dev.memory_bytes,
                concurrency=concurrency,
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
    catalog: Catalog | None = None,
) -> Estimate:
    """The simulated cost of one call of ``profile`` on ``target``.

    ``batch_size`` defaults to the profile's own batch (1 without a batch dimension).
    """
    batch = (profile.batch_size or 1) if batch_size is None else batch_size
    return estimate_batches(
        profile,
        target,
        [batch],
        precision=precision,
        instance=instance,
        concurrency=concurrency,
        catalog=catalog,
    )[0]


# ---------------------------------------------------------------------------------------------
# Load, warm-up and memory


def model_load_seconds(
    profile: Profile, host_load_seconds: float, *, catalog: Catalog | None = None
) -> float:
    """Simulated time to load the model onto an EI accelerator.

    The measured host load times ``model_load_factor``, plus ``model_load_fixed_seconds``, plus the
    weights crossing the network.
    """
    c = (catalog or default_catalog()).value
    return (
        float(c("model_load_fixed_seconds"))
        + max(host_load_seconds, 0.0) * float(c("model_load_factor"))
        + profile.param_bytes / float(c("network_bytes_per_second"))
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
