"""The two courses' conventions for the first assignment's ``TwoLayerNet``.

UCLA C147/C247 (the default): ``W1`` (H, D), ``W2`` (C, H), loss regularization
``0.5 * reg * sum(W**2)``. Stanford CS231n: ``W1`` (D, H), ``W2`` (H, C),
``reg * sum(W**2)``. nndl's reference (:class:`nndl.neural_net.TwoLayerNet`) is C147's; a
:class:`Variant` turns its parameters and gradients into the student's layout and a
student's ``reg`` into the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

from nndl._typing import Params

WEIGHTS = ("W1", "W2")


@dataclass(frozen=True)
class Variant:
    """One course's layout and regularization. ``coefficient(reg)`` is c in
    ``loss = data loss + c * (sum(W1**2) + sum(W2**2))``."""

    name: str
    course: str
    transposed: bool  # weights stored (in, out) rather than the reference's (out, in)
    half: bool  # 0.5 * reg

    def coefficient(self, reg: float) -> float:
        return 0.5 * reg if self.half else reg

    def reference_reg(self, reg: float) -> float:
        """The ``reg`` that gives the reference (0.5 * reg) this course's loss."""
        return 2.0 * self.coefficient(reg)

    @property
    def regularization(self) -> str:
        return "0.5 * reg * sum(W**2)" if self.half else "reg * sum(W**2)"

    @property
    def layout(self) -> str:
        return "W1 (D, H), W2 (H, C)" if self.transposed else "W1 (H, D), W2 (C, H)"

    def to_student(self, params: Params) -> Params:
        """Reference-layout arrays (parameters or gradients) in this course's layout."""
        if not self.transposed:
            return dict(params)
        return {k: (v.T.copy() if k in WEIGHTS else v) for k, v in params.items()}

    def shape(self, name: str, reference_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of parameter ``name`` in this course's layout."""
        if self.transposed and name in WEIGHTS:
            return tuple(reversed(reference_shape))
        return tuple(reference_shape)

    @property
    def other(self) -> Variant:
        return VARIANTS["cs231n" if self.name == "c147" else "c147"]


VARIANTS = {
    "c147": Variant("c147", "C147", transposed=False, half=True),
    "cs231n": Variant("cs231n", "CS231n", transposed=True, half=False),
}
