"""What the optimizer accepts, checked before any kernel runs: the kernels index by the variable's size and
write in place, so a gradient of another shape would be read past its end, and a read-only variable could not be
updated where it lies (a strided or transposed view can: the optimizer updates a contiguous copy and writes it
back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FLOATING = ("float16", "bfloat16", "float32", "float64")


def dtype_name(x: Any) -> str:
    dtype = getattr(x, "dtype", None)
    name = getattr(dtype, "name", None) or str(dtype)
    return name.removeprefix("torch.")


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def check_variable(x: Any, name: str) -> None:
    """A model variable: a floating array, writable (it is updated where it lies)."""
    if not _is_array(x):
        raise TypeError(f"variable {name!r}: expected an array (NumPy, torch, CuPy), got {type(x).__name__}")
    if dtype_name(x) not in FLOATING:
        raise TypeError(f"variable {name!r}: dtype {dtype_name(x)} is not floating; accepted: {', '.join(FLOATING)}")
    flags = getattr(x, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):
        raise ValueError(f"variable {name!r} is read-only: the optimizer updates variables in place")


def is_contiguous(x: Any) -> bool:
    """Whether ``x`` lies in C order without gaps (a NumPy or CuPy array's flags, a torch tensor's own word)."""
    flags = getattr(x, "flags", None)
    contiguous = getattr(flags, "c_contiguous", None) if flags is not None else None
    if contiguous is None and hasattr(x, "is_contiguous"):
        contiguous = x.is_contiguous()
    return contiguous is not False


def check_gradients(grads: Sequence[Any], variables: Sequence[Any], names: Sequence[str]) -> None:
    """One gradient (or None) per variable, each a floating array of its variable's shape."""
    if len(grads) != len(variables):
        raise ValueError(f"apply: {len(grads)} gradients for {len(variables)} variables")
    for g, v, name in zip(grads, variables, names):
        if g is None:
            continue
        if not _is_array(g):
            raise TypeError(f"gradient for variable {name!r}: expected an array, got {type(g).__name__}")
        if tuple(g.shape) != tuple(v.shape):
            raise ValueError(f"gradient for variable {name!r} has shape {tuple(g.shape)}; the variable has shape "
                             f"{tuple(v.shape)}")
        if dtype_name(g) not in FLOATING:
            raise TypeError(f"gradient for variable {name!r}: dtype {dtype_name(g)} is not floating; accepted: "
                            f"{', '.join(FLOATING)}")
