"""The kernel's one attached accelerator."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from ei_widgets.device import accelerator as acc_mod
from ei_widgets.device.accelerator import AcceleratorState, Attachment, Change
from ei_widgets.errors import DoesNotFitError, UnknownNameError
from tests.builders import big_profile
from tests.threads import in_threads


@pytest.fixture
def st() -> AcceleratorState:
    return AcceleratorState()


@pytest.fixture
def kernel_state() -> Iterator[AcceleratorState]:
    """The kernel's one state, left as it was found (its instance too) for the tests after."""
    acc_mod.detach()
    instance = acc_mod.state().instance.name
    yield acc_mod.state()
    acc_mod.detach()
    acc_mod.set_instance(instance)


def test_attach_detach_and_current(kernel_state: AcceleratorState) -> None:
    assert acc_mod.current() is None
    att = acc_mod.attach("ml.eia2.medium", instance="ml.t3.large", precision="fp16")
    assert isinstance(att, Attachment)
    assert acc_mod.current() is att
    assert att.accelerator.name == "ml.eia2.medium"
    assert att.precision == "fp16"
    assert att.since.tzinfo is not None
    assert kernel_state.instance.name == "ml.t3.large"
    assert acc_mod.detach() is att
    assert acc_mod.current() is None
    assert acc_mod.detach() is None  # detaching twice is harmless


def test_attaching_another_replaces_it_with_a_notice(st: AcceleratorState) -> None:
    changes: list[Change] = []
    st.subscribe(changes.append)
    first = st.attach("ml.eia2.medium")
    second = st.attach("ml.eia2.large")
    assert st.attachment is second
    assert second.replaced is first
    third = st.attach("ml.eia1.medium")
    assert third.replaced is second and second.replaced is None  # history stays bounded
    assert [c.kind for c in changes] == ["attach", "attach", "attach"]
    assert changes[0].notice is None
    assert changes[1].previous is first and changes[1].current is second
    assert changes[1].notice is not None
    assert "ml.eia2.large replaces ml.eia2.medium" in changes[1].notice


def test_context_manager_detaches_on_exit(st: AcceleratorState) -> None:
    with st.attach("ml.eia1.large") as att:
        assert st.attachment is att
    assert st.attachment is None


def test_context_manager_leaves_a_replacement_alone(st: AcceleratorState) -> None:
    with st.attach("ml.eia1.large"):
        other = st.attach("ml.eia2.xlarge")
    assert st.attachment is other


def test_context_manager_detaches_on_error(st: AcceleratorState) -> None:
    with pytest.raises(RuntimeError), st.attach("ml.eia1.large"):
        raise RuntimeError("boom")
    assert st.attachment is None


def test_unknown_names_are_rejected_with_the_closest(st: AcceleratorState) -> None:
    with pytest.raises(UnknownNameError, match=r"Did you mean 'ml.eia2.medium'") as info:
        st.attach("ml.eia2.meduim")
    assert "ml.eia1.xlarge" in str(info.value)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'ml.t3.medium'"):
        st.attach("ml.eia2.medium", instance="ml.t3.medum")
    with pytest.raises(UnknownNameError, match="precision"):
        st.attach("ml.eia2.medium", precision="int8")
    with pytest.raises(UnknownNameError):
        st.set_instance("ml.g4dn.xlarge")  # not a notebook instance
    assert st.attachment is None
    assert st.instance.name == "ml.t3.medium"


def test_set_instance_and_model_notify(st: AcceleratorState) -> None:
    changes: list[Change] = []
    unsubscribe = st.subscribe(changes.append)
    st.set_instance("ml.m5.xlarge")
    st.set_instance("ml.m5.xlarge")  # no change, no notice
    prof = big_profile(1000)
    st.set_model("net", prof)
    st.attach("ml.eia2.medium")
    st.detach()
    unsubscribe()
    st.attach("ml.eia2.medium")
    assert [c.kind for c in changes] == ["instance", "model", "attach", "detach"]
    assert changes[0].current.name == "ml.m5.xlarge"
    assert changes[1].current == ("net", prof)
    st.set_model("net", None)
    assert st.model is None


def test_attach_checks_the_model_fits(st: AcceleratorState) -> None:
    st.set_model("big", big_profile(3 * 2**30))
    with pytest.raises(DoesNotFitError, match=r"ml.eia2.medium has 2 GiB.*fits is ml.eia2.large"):
        st.attach("ml.eia2.medium")
    assert st.attachment is None
    assert st.attach("ml.eia2.xlarge").accelerator.name == "ml.eia2.xlarge"


def test_a_failing_observer_does_not_break_the_state(st: AcceleratorState) -> None:
    seen: list[str] = []

    def broken(change: Change) -> None:
        raise ValueError("view bug")

    st.subscribe(broken)
    st.subscribe(lambda c: seen.append(c.kind))
    st.attach("ml.eia2.medium")
    assert st.attachment is not None
    assert seen == ["attach"]


def test_concurrent_attaches_leave_one_consistent_state(st: AcceleratorState) -> None:
    changes: list[Change] = []
    st.subscribe(changes.append)
    names = list(st.catalog.accelerators)

    def worker(i: int) -> None:
        for j in range(50):
            st.attach(names[(i + j) % len(names)])

    in_threads(worker, 6)
    assert len(changes) == 300
    # Changes chain: each one's previous is the one before's current.
    for before, after in itertools.pairwise(changes):
        assert after.previous is before.current
    assert st.attachment is changes[-1].current
