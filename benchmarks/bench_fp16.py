"""Cost of the fp16 check, as a multiple of one fp32 onnxruntime inference of the same model.

The check of ResNet-50 (seeded random weights, so the conversion handles 25.6 M real weights):
convert to fp16 and run 8 inferences with each model (``fp16_check(model, samples=8)``, caches
cleared), against one fp32 ``onnxruntime`` inference on a session already loaded, measured in the
same run. The check includes both session loads and the conversion, so the ratio says how many
plain inferences a user waits for the answer. A second, cached check is reported too (the model's
hash only). ``--quick`` checks SqueezeNet with 2 samples instead (CI smoke).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rows import Rows
from timing import median_seconds

from ei_widgets.device import fp16
from tests.weights import with_weights

TARGET_RATIO = 100.0  # the check should cost at most about 100 plain inferences


def one_inference_s(model: Any, repeats: int) -> float:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    arg = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in arg.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    sess.run(None, {arg.name: x})  # warm-up
    return median_seconds(lambda: sess.run(None, {arg.name: x}), repeats)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="SqueezeNet, 2 samples (CI smoke)")
    args = parser.parse_args(argv)
    name, label, samples = (
        ("squeezenet", "SqueezeNet", 2) if args.quick else ("resnet50", "ResNet-50", 8)
    )
    model = with_weights(name)
    rows = Rows(name_width=44)
    plain = one_inference_s(model, 3 if args.quick else 7)
    fp16.clear_cache()
    start = time.perf_counter()
    check = fp16.fp16_check(model, samples=samples)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    fp16.fp16_check(model, samples=samples)
    warm = time.perf_counter() - start
    ratio = cold / plain
    rows(
        f"fp16 check {label}: convert + {samples}+{samples} runs",
        ratio,
        "x",
        f"<= {TARGET_RATIO:g}x",
        ratio <= TARGET_RATIO,
        f"{cold:.2f} s vs one fp32 inference {plain * 1e3:.0f} ms; converted in "
        f"{check.convert_seconds:.2f} s; {check.agreement}",
    )
    print(f"{'cached check, for information':44} {warm / plain:10.2f} x      ({warm:.3f} s)")
    return rows


if __name__ == "__main__":
    main()
