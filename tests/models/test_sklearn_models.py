"""scikit-learn estimators and pipelines as first-class models, converted with skl2onnx."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ei_widgets.device.accelerator import AcceleratorState
from ei_widgets.device.metrics import MetricsStream
from ei_widgets.device.sessions import session
from ei_widgets.errors import EIError, ModelLoadError, ProfileError
from ei_widgets.models.discovery import find_models
from ei_widgets.models.frameworks import sklearn as sklearn_models
from ei_widgets.models.loading import load_model
from ei_widgets.profiling.profiler import profile


def data(features: int = 6, rows: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


def fitted(model: Any, features: int = 6) -> Any:
    x, y = data(features)
    return model.fit(x, y)


@pytest.fixture
def st() -> AcceleratorState:
    state = AcceleratorState()
    state.attach("ml.eia2.large")
    return state


def run(model: Any, st: AcceleratorState, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = session(model, clock="virtual", state=st, stream=MetricsStream())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"X": x}), strict=True))


CLASSIFIERS = {
    "logistic": lambda: LogisticRegression(),
    "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "forest": lambda: RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(CLASSIFIERS))
def test_session_outputs_match_predict_and_predict_proba(case: str, st: AcceleratorState) -> None:
    model = fitted(CLASSIFIERS[case]())
    x, _ = data()
    outputs = run(model, st, x[:17])
    np.testing.assert_array_equal(outputs["label"], model.predict(x[:17]))
    np.testing.assert_allclose(
        outputs["probabilities"], model.predict_proba(x[:17]), rtol=1e-4, atol=1e-5
    )


def test_regressor_outputs_match_predict(st: AcceleratorState) -> None:
    x, _ = data()
    y = x @ np.arange(1, 7, dtype=np.float32) + 0.5
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(x, y)
    (out,) = run(model, st, x[:5]).values()
    np.testing.assert_allclose(out.ravel(), model.predict(x[:5]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["logistic", "pipeline", "forest"])
def test_profiles_have_costs_for_every_operator(case: str) -> None:
    model = fitted(CLASSIFIERS[case]())
    result = profile(model, batch_size=32)
    assert result.kind in ("sklearn-estimator", "sklearn-pipeline")
    assert result.bound_inputs == {"X": (32, 6)}
    assert result.unknown_ops == ()
    assert result.flops > 0
    assert profile(model, batch_size=64).flops == 2 * result.flops


def test_linear_costs_follow_the_coefficients() -> None:
    model = fitted(LogisticRegression())
    result = profile(model, batch_size=10)
    (node,) = [n for n in result.nodes if n.op_type == "LinearClassifier"]
    # skl2onnx writes a binary classifier's scores for both classes: 6 features x 2 per sample,
    # 2 FLOPs a multiply-add, plus one intercept add per score
    assert node.macs == 10 * 6 * 2
    assert node.flops == 2 * node.macs + 10 * 2


def test_framework_counts_the_numbers_the_model_carries() -> None:
    model = fitted(make_pipeline(StandardScaler(), LogisticRegression()))
    loaded = load_model(model)
    info = loaded.framework
    assert info is not None and info.framework == "sklearn" and info.kind == "sklearn-pipeline"
    scaler, classifier = model[0], model[1]
    expected = scaler.mean_.size + scaler.scale_.size
    expected += classifier.coef_.size + classifier.intercept_.size
    # skl2onnx writes a binary classifier's coefficients for both classes
    assert info.params in (expected, expected + classifier.coef_.size + classifier.intercept_.size)
    assert info.exporter == "skl2onnx" and "n_features_in_" in info.input_source


def test_conversions_are_cached_until_refit() -> None:
    model = fitted(LogisticRegression())
    first = load_model(model)
    assert load_model(model) is first
    assert sklearn_models.cached_exports(model) == 1
    x, y = data()
    model.fit(x[::-1], y[::-1] ^ 1)  # a different fit of the same object
    second = load_model(model)
    assert second is not first
    assert sklearn_models.cached_exports(model) == 2


def test_not_fitted_and_half_fitted_models_say_so() -> None:
    with pytest.raises(ModelLoadError, match=r"LogisticRegression is not fitted: call fit\(\)"):
        load_model(LogisticRegression())
    x, _ = data()
    half = Pipeline([("scale", StandardScaler().fit(x)), ("clf", LogisticRegression())])
    with pytest.raises(ModelLoadError) as error:
        profile(half)
    assert "step 'clf'" in str(error.value) and "not fitted" in str(error.value)
    (entry,) = find_models({"half": half})
    assert "not fitted" in entry.summary


def test_input_shape_must_match_the_fitted_features() -> None:
    model = fitted(LogisticRegression())
    assert load_model(model).model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 6
    with pytest.raises(ProfileError, match="fitted on 6 features"):
        sklearn_models.load(model, input_shape=(1, 5))
    with pytest.raises(ProfileError, match="n_features"):
        sklearn_models.load(model, input_shape="wide")


def test_an_unconvertible_estimator_gives_the_converters_reason() -> None:
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Custom(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Custom:
            self.classes_ = np.unique(y)
            self.n_features_in_ = x.shape[1]
            return self

        def predict(self, x: Any) -> Any:
            return np.zeros(len(x), dtype=np.int64)

    with pytest.raises(
        ModelLoadError, match=r"^Cannot convert Custom to ONNX with skl2onnx: "
    ) as e:
        load_model(fitted(Custom()))
    assert "\n" not in str(e.value)


def test_find_models_lists_estimators_and_pipelines_not_lone_transformers() -> None:
    x, y = data()
    namespace = {
        "clf": LogisticRegression().fit(x, y),
        "pipe": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "scaler": StandardScaler().fit(x),
        "numbers": x,
    }
    found = {e.variable: e for e in find_models(namespace)}
    assert set(found) == {"clf", "pipe"}
    assert found["clf"].kind == "sklearn-estimator"
    assert found["clf"].summary == "scikit-learn LogisticRegression, 6 features"
    assert found["pipe"].kind == "sklearn-pipeline"
    assert found["pipe"].summary == (
        "scikit-learn pipeline (StandardScaler → LogisticRegression), 6 features"
    )


def test_without_the_extra_models_are_listed_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if it were not installed
    model = fitted(LogisticRegression())
    (entry,) = find_models({"clf": model})
    assert "install ei_widgets[sklearn]" in entry.summary
    with pytest.raises(EIError, match=r"install ei_widgets\[sklearn\]"):
        profile(model)
