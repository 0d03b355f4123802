"""The scale check: tensors of a million elements at kernel boundaries, every element judged, strided views.

Proof of sensitivity: fused kernels that go wrong only on large tensors (``tests/mutants/fused.py``: a dropped tail,
a boundary element updated twice, a stale per-block scalar, a dense layout assumed) fail ``scale`` and pass every
other check; the same kernel launched honestly passes them all.
"""

import dataclasses
import io

import numpy as np
import pytest
from optimizer_conformance.conformance.candidates import framing
from optimizer_conformance.conformance.candidates.engines.base import StridedViews
from optimizer_conformance.conformance.cases.scale import BOUNDARY_SIZES, runs_scale, scale_cases
from optimizer_conformance.conformance.model import PROFILES, PackedArray, decode, encode
from optimizer_conformance.conformance.report import failures_text
from optimizer_conformance.conformance.settings import CHECK_FAMILIES

from tests.conftest import requires
from tests.mutants.fused import BLOCK, MUTANTS

OTHER_CHECKS = tuple(c for c in CHECK_FAMILIES if c not in ("scale", "api"))


def _run(candidate: str, checks: tuple[str, ...]):
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.runner import Plan, run_plan

    # The quick profile's other checks (their trajectories are as small in ci), and the ci profile's scale check.
    profile = dataclasses.replace(PROFILES["quick"], scale_elements=PROFILES["ci"].scale_elements)
    with Worker(Candidate(f"tests.mutants.fused:{candidate}", "torch")) as worker:
        return run_plan(worker, Plan(["adam"], ["float32"], profile, checks))


@requires("numba")
@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_fused_kernel_wrong_only_on_large_tensors_fails_scale_and_passes_every_other_check(mutant):
    outcomes = _run(mutant, (*OTHER_CHECKS, "scale"))
    scale = [o for o in outcomes if o.check == "scale"]
    assert len(scale) == 1 and scale[0].failed and scale[0].error is None, scale
    assert scale[0].worst.ratio > 1e3 and scale[0].worst.quantity.endswith(("/large", "/matrix")), scale[0].worst
    assert "kernel's (its tail, chunks or layout)" in failures_text(scale)  # what the diagnosis tried, said
    others = [o for o in outcomes if o.check != "scale"]
    assert len(others) > 30
    assert all(o.passed or o.not_applicable for o in others), [(o.check, str(o.worst), o.error) for o in others
                                                               if not o.passed and not o.not_applicable]


@requires("numba")
def test_the_same_kernel_launched_block_by_block_honestly_passes_scale_and_every_other_check():
    outcomes = _run("Blocked", (*OTHER_CHECKS, "scale"))
    assert [o.verdict for o in outcomes if o.check == "scale"] == ["pass"]
    assert all(o.passed or o.not_applicable for o in outcomes), [(o.check, str(o.worst), o.error) for o in outcomes
                                                                 if not o.passed and not o.not_applicable]


def test_the_scale_trajectory_has_a_million_elements_and_variables_past_every_boundary():
    case, = scale_cases("adam", "float32", PROFILES["ci"], ["adam"], ["float32"])
    sizes = [int(np.prod(shape)) for _, shape, _ in case.spec["variables"]]
    assert max(sizes) == 2**20 + 1 and sum(sizes) > 10**6 and case.spec["strided_views"]
    for width in (8, 16, 32, 1024):  # past a multiple of each width, and short of one
        assert any(n > width and n % width == 1 for n in sizes) and any(n % width == width - 1 for n in sizes)
    assert 65537 in sizes and 8191 in sizes and all(n in sizes for n in BOUNDARY_SIZES)
    assert max(BLOCK, 2**16) < max(sizes)
    assert not scale_cases("adam", "float32", PROFILES["quick"], ["adam"], ["float32"])
    deep, = scale_cases("adam", "float32", PROFILES["deep"], ["adam"], ["float32"])
    assert int(np.prod(deep.spec["variables"][0][1])) > 10**7


def test_each_rule_gets_a_scale_trajectory_in_one_dtype_and_each_dtype_on_one_rule():
    rules, dtypes = ["adam", "adamw", "nadam", "adamax", "lamb", "schedule-free-adamw"], ["float32", "float64",
                                                                                         "float16", "bfloat16"]
    ran = {(a, d) for a in rules for d in dtypes if runs_scale(a, d, rules, dtypes)}
    assert {a for a, _ in ran} == set(rules) and {d for _, d in ran} == set(dtypes) and len(ran) == len(rules)


def test_large_arrays_travel_as_raw_bytes_beside_their_json_line_exactly():
    values = np.array([np.pi, -0.0, 5e-324, np.inf, np.nan, 2.0**-1022] * 1000)
    packed = encode(values)
    assert isinstance(packed, PackedArray) and isinstance(encode(values[:10]), list)  # small ones stay readable hex
    stream = io.BytesIO()
    framing.write(stream, {"states": [{"variables/w": packed, "iterations": ["0x1.0p+0"]}]})
    stream.seek(0)
    line, attachments = framing.read(stream)
    assert line.startswith(b'{"states"') and [len(a) for a in attachments] == [values.size * 8]
    back = framing.parse(line, attachments)["states"][0]["variables/w"]
    assert decode(back, values.shape).tobytes() == values.tobytes()
    assert decode(packed.to_json(), values.shape).tobytes() == values.tobytes()  # its JSON form, exactly
    assert framing.read(stream) is None


@pytest.mark.parametrize(("bad", "message"), [
    ({"float64le": "AAAA"}, "not a whole number"), ({"float64le": "AA!A"}, "not base64"),
    ({"float32le": ""}, "a packed array is"), ({"float64le": 3}, "a packed array is")])
def test_a_badly_packed_array_is_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        decode(bad, (-1,))


@pytest.mark.parametrize("junk", [b"#attachments 12 x\n", b'#attachments 8\n01234567{"states": [{"$attachment": 3}]}\n',
                                  b'#attachments 9\n012345678{"states": [{"$attachment": 0}]}\n'])
def test_a_damaged_frame_is_a_value_error_never_a_wrong_array(junk):
    with pytest.raises(ValueError):
        framing.parse(*framing.read(io.BytesIO(junk)))


def test_a_strided_view_is_not_contiguous_and_a_write_between_its_elements_is_caught():
    views = StridedViews()
    variable = views.variable("kernel", np.arange(12, dtype=np.float32).reshape(3, 4))
    assert not variable.flags.c_contiguous and not np.shares_memory(variable, variable.reshape(-1))
    variable += 1  # in place: allowed
    views.check("apply at step 1")
    np.lib.stride_tricks.as_strided(variable, shape=(12,), strides=(4,))[1] = 0.0  # a dense-layout write
    with pytest.raises(RuntimeError, match=r"wrote outside variable 'kernel'.*apply at step 2.*1 elements"):
        views.check("apply at step 2")


def _gpu_missing(adapter: str) -> str | None:
    """Why the bundled implementation cannot run on a GPU through ``adapter`` here, or None."""
    try:
        if adapter == "CupyAdapter":
            import cupy

            return None if cupy.cuda.runtime.getDeviceCount() > 0 else "CuPy sees no CUDA device"
        import torch

        return None if torch.cuda.is_available() else f"torch {torch.__version__} sees no CUDA device"
    except Exception as error:  # noqa: BLE001 - an absent or broken CUDA stack: the reason
        return f"{adapter} needs a CUDA GPU: {type(error).__name__}: {error}"


@pytest.mark.parametrize("adapter", ["TorchCudaAdapter", "CupyAdapter"])
def test_the_bundled_implementation_passes_scale_on_a_gpu(adapter):
    """torch CUDA tensors and CuPy arrays through ``scale`` at the deep profile's size (10·2²⁰ + 1 elements), every
    rule in float32 and float64: where a GPU is (the README records the figures)."""
    missing = _gpu_missing(adapter)
    if missing:
        pytest.skip(missing)
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.runner import Plan, run_plan

    deep = dataclasses.replace(PROFILES["deep"], every_combination=False)
    with Worker(Candidate(f"optimizer_conformance.fast_optimizers.conformance:{adapter}", "torch")) as worker:
        outcomes = run_plan(worker, Plan(list(worker.description["algorithms"]), ["float32", "float64"], deep,
                                         ("scale",)))
    assert len(outcomes) >= 7 and all(o.passed for o in outcomes), [(o.algorithm, o.dtype, str(o.worst), o.error)
                                                                    for o in outcomes if not o.passed]
