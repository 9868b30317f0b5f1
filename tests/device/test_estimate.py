"""The latency and memory model."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from ei_widgets.device.catalog import Constant, packaged_catalog
from ei_widgets.device.estimate import (
    check_fits,
    does_not_fit,
    estimate,
    estimate_batches,
    host_clock_factor,
    host_op_count,
    kernel_fill_seconds,
    model_load_seconds,
    smallest_fitting,
    warmup_seconds,
)
from ei_widgets.errors import DoesNotFitError, ProfileError, UnknownNameError
from ei_widgets.profiling.profiler import profile
from ei_widgets.profiling.result import NodeCost, ParamGroup, Profile, TensorInfo
from tests.builders import tiny

CAT = packaged_catalog()
C = CAT.value


def node(op: str, flops: int, act: int, params: int = 0, name: str = "") -> NodeCost:
    return NodeCost(
        name=name or op,
        op_type=op,
        domain="",
        flops=flops,
        macs=flops // 2,
        bytes_read=act + params,
        bytes_written=act,
        param_bytes=params,
        output_shapes=((1, 8),),
        known=True,
    )


def make_profile(
    nodes: list[NodeCost], *, batch: int = 1, peak: int = 1_000_000, params: int | None = None
) -> Profile:
    params = sum(n.param_bytes for n in nodes) if params is None else params
    return Profile(
        name="synthetic",
        inputs=(TensorInfo("x", "float32", ("N", 3, 224, 224)),),
        outputs=(TensorInfo("y", "float32", ("N", 1000)),),
        opsets={"": 17},
        producer="test",
        node_count=len(nodes),
        op_histogram={},
        params=(ParamGroup("float32", params // 4, params),),
        nodes=tuple(nodes),
        peak_activation_bytes=peak,
        model_size_bytes=params,
        unknown_ops=(),
        batch_size=batch,
        bound_inputs={"x": (batch, 3, 224, 224)},
    )


def conv_net(batch: int = 1, params: int = 4_000_000) -> Profile:
    nodes = [node("Conv", 200_000_000, 800_000, params // 10, f"c{i}") for i in range(10)]
    nodes += [node("Relu", 200_000, 800_000, 0, f"r{i}") for i in range(10)]
    nodes += [node("Reshape", 0, 800_000, 0, "reshape")]
    return make_profile(nodes, batch=batch, peak=3_200_000)


def test_breakdown_adds_up_and_names_the_bounding_term() -> None:
    est = estimate(conv_net(), "ml.eia2.medium", catalog=CAT)
    parts = est.breakdown
    assert set(parts) == {"network", "compute", "memory", "launch", "host"}
    assert est.latency_s == pytest.approx(sum(parts.values()))
    assert est.bound == max(parts, key=lambda k: parts[k])
    assert est.latency_ms == pytest.approx(est.latency_s * 1e3)
    # 20 device nodes launch a kernel; the Reshape does not.
    assert est.launch_s == pytest.approx(20 * C("kernel_launch_seconds"))
    # The network term: the RPC plus the payload (input 3x224x224 + output 1000 floats) over
    # the client instance's network (ml.t3.medium: up to 5 Gbit/s).
    payload = (3 * 224 * 224 + 1000) * 4
    link = 5e9 / 8 * C("network_efficiency")
    assert est.network_s == pytest.approx(C("rpc_seconds") + payload / link)
    # The host term: the EI client runtime's own per-call work (MXNet for an ONNX graph).
    assert est.runtime == "mxnet"
    assert est.host_s == pytest.approx(C("runtime_call_seconds")["mxnet"])


def test_compute_term_follows_the_roofline() -> None:
    # One big Conv: compute-bound on eia2.medium at fp32.
    # A tensor op's efficiency rises with its work: its ideal time at peak over the GPU's
    # tensor_efficiency (eia2 is a slice of a T4), plus the T4's fixed kernel fill.
    prof = make_profile([node("Conv", 10**10, 1000, 0)])
    est = estimate(prof, "ml.eia2.medium", catalog=CAT)
    eff = C("tensor_efficiency")["T4"]["fp32"]
    assert est.compute_s == pytest.approx(1e10 / 1e12 / eff + kernel_fill_seconds(CAT, "T4"))
    assert est.memory_s == 0
    assert est.bound == "compute"
    # One big Add: memory-bound.
    prof = make_profile([node("Add", 1000, 10**8, 0)])
    est = estimate(prof, "ml.eia2.medium", catalog=CAT)
    assert est.memory_s == pytest.approx(2e8 / (40e9 * C("memory_efficiency")))
    assert est.compute_s == 0
    assert est.bound == "memory"


def test_batch_scales_flops_and_activations_not_weights() -> None:
    prof = conv_net(batch=2)
    e2, e8 = estimate_batches(prof, "ml.eia2.large", [2, 8], catalog=CAT)
    assert e8.flops == pytest.approx(4 * e2.flops)
    assert e8.weights_bytes == e2.weights_bytes
    assert e8.activation_bytes == pytest.approx(4 * e2.activation_bytes, rel=1e-6)
    assert e8.latency_s > e2.latency_s
    # The profile's own batch is the default.
    assert estimate(prof, "ml.eia2.large", catalog=CAT).batch_size == 2
    # Batch 1 from a batch-2 profile halves the work.
    e1 = estimate(prof, "ml.eia2.large", batch_size=1, catalog=CAT)
    assert e1.flops == pytest.approx(e2.flops / 2)


def test_vectorised_and_single_estimates_agree() -> None:
    prof = conv_net()
    many = estimate_batches(prof, "ml.eia1.large", range(1, 9), precision="fp16", catalog=CAT)
    for b, est in zip(range(1, 9), many, strict=True):
        one = estimate(prof, "ml.eia1.large", batch_size=b, precision="fp16", catalog=CAT)
        assert one == est


def test_fp16_uses_tensor_cores_and_halves_bytes() -> None:
    prof = conv_net()
    f32 = estimate(prof, "ml.eia2.medium", precision="fp32", catalog=CAT)
    f16 = estimate(prof, "ml.eia2.medium", precision="fp16", catalog=CAT)
    assert f16.compute_s + f16.memory_s < f32.compute_s + f32.memory_s
    assert f16.weights_bytes == f32.weights_bytes // 2
    assert f16.activation_bytes == f32.activation_bytes // 2
    assert f16.network_s == f32.network_s  # the caller's tensors cross the network as sent
    # A non-tensor op gains nothing on compute at fp16.
    relu = make_profile([node("Relu", 10**10, 10, 0)])
    assert estimate(relu, "ml.eia2.medium", precision="fp16", catalog=CAT).compute_s == (
        pytest.approx(estimate(relu, "ml.eia2.medium", catalog=CAT).compute_s)
    )


def test_bigger_accelerators_are_faster_and_whole_gpus_skip_the_network() -> None:
    prof = conv_net()
    lat = {a: estimate(prof, a, catalog=CAT).latency_s for a in CAT.accelerators}
    assert lat["ml.eia2.xlarge"] < lat["ml.eia2.large"] < lat["ml.eia2.medium"]
    assert lat["ml.eia1.xlarge"] < lat["ml.eia1.large"] < lat["ml.eia1.medium"]
    gpu = estimate(prof, "ml.g4dn.xlarge", catalog=CAT)
    assert gpu.kind == "gpu"
    assert gpu.network_s < estimate(prof, "ml.eia2.xlarge", catalog=CAT).network_s
    assert gpu.memory_available_bytes == 16 * 2**30


def test_cpu_only_model() -> None:
    prof = conv_net()
    est = estimate(prof, "ml.t3.medium", catalog=CAT)
    assert est.kind == "cpu" and est.instance == "ml.t3.medium"
    flops = 2 * C("cpu_peak_gflops_per_vcpu")["t3"] * 1e9 * C("cpu_efficiency")
    # Each tensor op: its FLOPs at cpu_efficiency of the vector peak plus the runtime's fixed
    # kernel cost (MXNet's MKL-DNN backend keeps weights and activations in its layout: none).
    fixed = C("cpu_kernel_seconds")
    assert est.runtime == "mxnet" and fixed["mxnet"] < fixed["pytorch"]
    assert est.compute_s == pytest.approx(10 * (2e8 / flops + fixed["mxnet"]), rel=0.01)
    torch_est = estimate(prof, "ml.t3.medium", runtime="pytorch", catalog=CAT)
    assert torch_est.compute_s == pytest.approx(10 * (2e8 / flops + fixed["pytorch"]), rel=0.01)
    assert est.memory_available_bytes == 4 * 2**30
    # fp16 brings nothing on CPU.
    assert estimate(prof, "ml.t3.medium", precision="fp16", catalog=CAT).latency_s == (
        pytest.approx(est.latency_s)
    )
    # More vCPUs, less time; per vCPU, AVX-512 (c5) is faster than AVX2 (t2).
    assert estimate(prof, "ml.c5.2xlarge", catalog=CAT).latency_s < est.latency_s
    t2 = estimate(prof, "ml.t2.medium", catalog=CAT)
    assert t2.compute_s > estimate(prof, "ml.c5.large", catalog=CAT).compute_s


def test_host_ops_run_on_the_host_with_an_extra_round_trip() -> None:
    nodes = [node("Conv", 10**8, 10**5, 10**5), node("StringNormalizer", 10**7, 10**5)]
    prof = make_profile(nodes)
    assert host_op_count(prof, catalog=CAT) == 1
    small = estimate(prof, "ml.eia2.medium", instance="ml.t3.medium", catalog=CAT)
    big = estimate(prof, "ml.eia2.medium", instance="ml.m5.xlarge", catalog=CAT)
    call = C("runtime_call_seconds")["mxnet"]
    assert small.host_s > call + C("rpc_seconds")  # the host op's round trip
    assert big.host_s < small.host_s  # more vCPUs on the host
    assert small.instance == "ml.t3.medium"
    no_host = make_profile(nodes[:1])
    assert estimate(no_host, "ml.eia2.medium", catalog=CAT).host_s == pytest.approx(call)


def test_rois_nms_and_control_flow_run_on_the_accelerator() -> None:
    # EI ran most neural-network, math, array and control-flow ops on the accelerator: a
    # detection model's RoI pooling and NMS cost no round trip to the client.
    for op in ("RoiAlign", "MaxRoiPool", "NonMaxSuppression", "If", "Loop"):
        assert host_op_count(make_profile([node(op, 10**6, 10**4)]), catalog=CAT) == 0


def test_large_kernels_run_closer_to_peak_than_small_ones() -> None:
    # Work relative to the device: the same op, 1000x the work, much higher efficiency.
    small = estimate(make_profile([node("Conv", 10**7, 10)]), "ml.eia1.large", catalog=CAT)
    large = estimate(make_profile([node("Conv", 10**10, 10)]), "ml.eia1.large", catalog=CAT)
    peak = 2e12
    assert 1e7 / small.compute_s / peak < 0.5 * (1e10 / large.compute_s / peak)
    assert 1e10 / large.compute_s / peak > 0.8 * C("tensor_efficiency")["V100"]["fp32"]


def test_whole_gpu_runtimes_framework_and_tuned() -> None:
    # TensorRT fuses batch norm and activations, reaches a higher efficiency and has almost no
    # per-call work: a whole T4 runs ResNet-class work several times faster than through Keras.
    prof = conv_net()
    keras = estimate(prof, "ml.g4dn.xlarge", runtime="keras", catalog=CAT)
    tuned = estimate(prof, "ml.g4dn.xlarge", runtime="tensorrt", catalog=CAT)
    assert tuned.latency_s < keras.latency_s / 3
    assert tuned.launch_s == pytest.approx(10 * C("kernel_launch_seconds"))  # Relus fused
    with pytest.raises(ProfileError, match="whole GPU only"):
        estimate(prof, "ml.eia2.large", runtime="tensorrt", catalog=CAT)
    with pytest.raises(UnknownNameError, match="runtime"):
        estimate(prof, "ml.g4dn.xlarge", runtime="onnx", catalog=CAT)


def test_throughput_grows_with_concurrency_up_to_the_busy_resource() -> None:
    est = estimate(conv_net(), "ml.eia2.large", batch_size=4, catalog=CAT)
    t1, t4, t64 = est.throughput(1), est.throughput(4), est.throughput(64)
    assert t1 == pytest.approx(4 / est.latency_s)
    assert t1 < t4 <= t64
    assert t64 == pytest.approx(4 / est.busy_s)
    assert estimate(conv_net(), "ml.eia2.large", concurrency=4, catalog=CAT).concurrency == 4
    with pytest.raises(ProfileError):
        est.throughput(0)
    with pytest.raises(ProfileError):
        estimate(conv_net(), "ml.eia2.large", concurrency=0, catalog=CAT)


def test_memory_needed_is_weights_activations_and_overhead() -> None:
    prof = conv_net(params=40_000_000)
    est = estimate(prof, "ml.eia2.medium", batch_size=4, catalog=CAT)
    assert est.weights_bytes == 40_000_000
    assert est.activation_bytes == 4 * 3_200_000
    expected_overhead = C("runtime_overhead_bytes") + int(
        C("runtime_overhead_fraction") * (40_000_000 + 4 * 3_200_000)
    )
    assert est.overhead_bytes == expected_overhead
    assert est.memory_needed_bytes == 40_000_000 + 12_800_000 + expected_overhead
    assert est.fits


def test_does_not_fit_names_needs_has_and_smallest_fit() -> None:
    # 1.5 GiB of weights: too big for the 1 GiB eia1.medium, fits in eia1.large? No: 2 GiB
    # minus overhead is tight, so the smallest fitting one is found by the model itself.
    prof = conv_net(params=1_500_000_000)
    est = estimate(prof, "ml.eia1.medium", catalog=CAT)
    assert not est.fits
    best = smallest_fitting(prof, catalog=CAT)
    assert best is not None and best.memory_bytes > CAT.accelerator("ml.eia1.medium").memory_bytes
    err = does_not_fit(prof, est, catalog=CAT)
    assert isinstance(err, DoesNotFitError)
    text = str(err)
    assert "weights 1.4 GiB" in text
    assert "activations at batch 1" in text
    assert "ml.eia1.medium has 1 GiB" in text
    assert f"smallest accelerator that fits is {best.name}" in text
    with pytest.raises(DoesNotFitError):
        check_fits(prof, est, catalog=CAT)


def test_nothing_fits_suggests_smaller_batch_or_fp16() -> None:
    prof = conv_net(params=20 * 2**30)
    est = estimate(prof, "ml.eia2.xlarge", catalog=CAT)
    assert "No accelerator fits it at this batch" in str(does_not_fit(prof, est, catalog=CAT))
    assert "fp16" in str(does_not_fit(prof, est, catalog=CAT))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None])
def test_bad_batch_sizes_are_rejected(bad: object) -> None:
    prof = conv_net()
    if bad is None:  # None means the profile's batch: fine
        assert estimate(prof, "ml.eia2.medium", batch_size=None, catalog=CAT).batch_size == 1
        return
    with pytest.raises(ProfileError, match="Batch size must be a positive integer"):
        estimate(prof, "ml.eia2.medium", batch_size=bad, catalog=CAT)  # type: ignore[arg-type]
    with pytest.raises(ProfileError):
        estimate_batches(prof, "ml.eia2.medium", [1, bad], catalog=CAT)  # type: ignore[list-item]


def test_unknown_targets_and_precisions() -> None:
    prof = conv_net()
    with pytest.raises(UnknownNameError, match=r"Did you mean 'ml.eia2.large'"):
        estimate(prof, "ml.eia2.lrge", catalog=CAT)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'fp16'"):
        estimate(prof, "ml.eia2.large", precision="fp61", catalog=CAT)
    with pytest.raises(UnknownNameError, match="notebook instance"):
        estimate(prof, "ml.eia2.large", instance="ml.p3.2xlarge", catalog=CAT)


def test_constants_come_from_the_catalog_data() -> None:
    prof = conv_net()
    constants = dict(CAT.constants)
    constants["rpc_seconds"] = dataclasses.replace(constants["rpc_seconds"], value=0.1)
    slow = dataclasses.replace(CAT, constants=MappingProxyType(constants))
    base = estimate(prof, "ml.eia2.medium", catalog=CAT)
    changed = estimate(prof, "ml.eia2.medium", catalog=slow)
    assert changed.network_s == pytest.approx(base.network_s - C("rpc_seconds") + 0.1)
    assert isinstance(constants["rpc_seconds"], Constant)


def test_load_and_warmup_follow_their_constants() -> None:
    prof = conv_net(params=8_000_000)
    load = model_load_seconds(prof, 2.0, catalog=CAT)
    assert load == pytest.approx(
        C("model_load_fixed_seconds")
        + 2.0 * C("model_load_factor")
        + 8_000_000 / (5e9 / 8 * C("network_efficiency"))  # ml.t3.medium's network
    )
    assert load > 2.0  # slower than on the host, as on EI
    assert warmup_seconds(0.01, catalog=CAT) == pytest.approx(
        C("warmup_fixed_seconds") + 0.01 * (C("warmup_factor") - 1)
    )


def test_real_profile_of_a_tiny_model() -> None:
    prof = profile(tiny(), batch_size=4)
    est = estimate(prof, "ml.eia2.medium", batch_size=4, catalog=CAT)
    assert est.flops == pytest.approx(prof.flops)
    assert est.weights_bytes == 16 * 8 * 4
    assert est.fits
    # Network dominates a tiny model on a network-attached accelerator.
    assert est.bound == "network"


def test_kernel_fill_scales_with_one_sms_achieved_rate() -> None:
    # The fill is one thread block's time on one SM: the V100's constant, longer on a GPU whose
    # SMs achieve less (the K80's), and the same for an EI slice as for its whole GPU.
    v100 = kernel_fill_seconds(CAT, "V100")
    assert v100 == C("kernel_fill_seconds")
    per_sm, eff = C("gpu_sm_f32_gflops"), C("tensor_efficiency")
    rate = {g: per_sm[g] * eff[g]["fp32"] for g in ("V100", "K80")}
    assert kernel_fill_seconds(CAT, "K80") == pytest.approx(v100 * rate["V100"] / rate["K80"])
    assert kernel_fill_seconds(CAT, "K80") > v100
    assert kernel_fill_seconds(CAT, "Inferentia2") == v100  # not a GPU: no SM figure
    prof = make_profile([node("Conv", 10**6, 1000, 0)])  # a tiny kernel: mostly fill
    whole = estimate(prof, "ml.p3.2xlarge", catalog=CAT).compute_s
    sliced = estimate(prof, "ml.eia1.medium", catalog=CAT).compute_s
    assert whole - 1e6 / 15.7e12 / eff["V100"]["fp32"] == pytest.approx(v100)
    assert sliced - 1e6 / 1e12 / eff["V100"]["fp32"] == pytest.approx(v100)


def test_host_suppression_runs_at_the_cores_clock() -> None:
    # Sequential work on the host: a 3.0 GHz core's per-candidate time, longer on slower cores.
    clocks = C("cpu_clock_ghz")
    assert host_clock_factor(CAT.instance("ml.c5.xlarge"), CAT) == pytest.approx(1.0)
    p3 = host_clock_factor(CAT.instance("ml.p3.2xlarge"), CAT)
    assert p3 == pytest.approx(3.0 / clocks["p3"]) and p3 > 1
