"""The scale check's trajectories: tensors of a million elements and more, at the sizes where kernels go wrong.

A fused kernel splits a tensor into vectors, chunks and thread blocks, and handles what is left over apart: the
tail of a length that is not a multiple of the vector width, the last chunk, the boundary between two chunks.  The
trajectories of the other checks have a few dozen elements and never reach those paths.  One scale trajectory
holds a variable per boundary:

* the largest, :attr:`Profile.scale_elements` + 1 elements (2²⁰ + 1 in the ``ci`` profile, 10·2²⁰ + 1 in ``deep``): a
  multiple of 1024 plus one, past 2³⁰ bytes of float64 state in ``deep``;
* 2¹⁶ ± 1 (65537 is prime), a multiple of 1024 + 1, a prime below 2¹³, multiples of 8, 16 and 32 minus and plus one,
  and 1, 7, 17 and 33 elements: a kernel launched once per variable meets each tail;
* a matrix of 1025 × 33, so that per-tensor norms (Lamb's trust ratio) and row-strided views cover two axes.

Two steps with the catalogue's plain inputs (:mod:`conformance.cases.inputs`), so every element's update depends
on the previous one's state: a stale per-chunk scalar or a boundary element updated twice shows at the next step.
The spec asks for ``strided_views``: a candidate whose array type has views (the adapter protocol's NumPy arrays)
gets every variable and gradient as a view with an offset and a stride into a larger buffer, and must neither lose
its in-place updates nor write outside the view.

Each rule runs in one dtype and each dtype on one rule (pairwise, as the pipeline features): the cost of the
``ci`` profile grows with the larger of the two counts.

Imports: the catalogue (its trajectories and inputs) and the data model.
"""

from __future__ import annotations

from dataclasses import replace

from optimizer_conformance.conformance.cases.catalogue import Shapes, Trajectory
from optimizer_conformance.conformance.model import Case, Profile

STEPS = 2

# Sizes past a boundary: 2**k ± 1, a prime, multiples of 8, 16, 32 and 1024 ± 1.
BOUNDARY_SIZES = (65537, 65535, 32 * 1024 + 1, 8191, 4 * 1024 - 1, 1023, 257, 255, 129, 33, 31, 17, 15, 9, 7, 1)
MATRIX = (1025, 33)


def scale_shapes(largest: int) -> Shapes:
    """The variables of a scale trajectory whose largest variable has ``largest`` + 1 elements."""
    return (("large", (largest + 1,)), ("matrix", MATRIX),
            *((f"n{size}", (size,)) for size in BOUNDARY_SIZES))


def scale_trajectory(algorithm: str, profile: Profile) -> Trajectory:
    """The scale trajectory of ``algorithm`` at ``profile``'s size (its rule's plain pipeline configuration)."""
    plain = Trajectory(f"scale-{profile.scale_elements}", "tensors of a million elements and more at kernel "
                       "boundaries", None, {}, steps=STEPS, shapes=scale_shapes(profile.scale_elements))
    return replace(plain.for_algorithm(algorithm, STEPS), steps=STEPS)


def runs_scale(algorithm: str, dtype: str, algorithms: list[str], dtypes: list[str]) -> bool:
    """Whether a run of ``algorithms`` in ``dtypes`` gives ``algorithm`` a scale trajectory in ``dtype``: each rule in
    one dtype and each dtype on one rule."""
    return any(algorithms[k % len(algorithms)] == algorithm and dtypes[k % len(dtypes)] == dtype
               for k in range(max(len(algorithms), len(dtypes))))


def scale_cases(algorithm: str, dtype: str, profile: Profile, algorithms: list[str], dtypes: list[str]) -> list[Case]:
    """The ``scale`` case of ``algorithm`` in ``dtype`` (none when the profile has no scale check, or when the
    pairwise run gives it to another rule or dtype)."""
    if not profile.scale_elements or not (profile.every_combination or runs_scale(algorithm, dtype, algorithms,
                                                                                  dtypes)):
        return []
    trajectory = scale_trajectory(algorithm, profile)
    spec = {**trajectory.spec(dtype), "strided_views": True}
    return [Case("scale", algorithm, dtype, spec, f"scale ({profile.scale_elements + 1} elements)")]
