"""The second assignment's parts: ``nndl/layers.py``, ``nndl/layer_utils.py``,
``nndl/optim.py``, ``nndl/fc_net.py`` and the Solver.

Found in a folder laid out as the course has it (the folder holding ``nndl/``, the ``nndl``
folder itself, or one of its files); the student's package is loaded in the child from
that folder, so its relative imports (``from .layers import *``) work. Every part's
inputs are drawn from ``--seed``: the layers' (:mod:`~nndl.grading.layer_parts`), the
update rules' (:mod:`~nndl.grading.optim_parts`), ``FullyConnectedNet``'s
(:mod:`~nndl.grading.fcnet_parts`) and the Solver's (:mod:`~nndl.grading.solver_part`).
A part whose file is not in the submission fails as ``missing``, naming the file. The
parts run in one child (a batch; each failing alone); when that child does not finish, each
module is imported once in a child of its own (a module that fails or hangs while importing
fails the parts that import it, naming it) and the other parts run one child each.

The second assignment is checked with the C147 release's names and conventions whatever
``--variant`` says (``--variant`` is the first assignment's): affine weights ``w`` (D, M),
dropout's ``p`` the probability of keeping a unit, ``use_batchnorm``, the update rules'
state under ``velocity``, ``a``, ``v`` and ``t``, regularization ``0.5 * reg * sum(W**2)``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nndl.grading.discovery import Target
from nndl.grading.fcnet_parts import NetParts, draw_net_case
from nndl.grading.layer_cases import draw_layer_case
from nndl.grading.layer_parts import LayerParts
from nndl.grading.optim_parts import OptimParts, draw_optim_case
from nndl.grading.parts import Part, Plan, Task
from nndl.grading.solver_part import SolverPart, draw_overfit_case, solver_source

#: The assignment's modules, as the course lays them out.
FILES = {"nndl.layers": "nndl/layers.py", "nndl.layer_utils": "nndl/layer_utils.py",
         "nndl.optim": "nndl/optim.py", "nndl.fc_net": "nndl/fc_net.py"}
#: The modules each task needs besides its own (the Solver's trains with the update rules).
ALSO = {"solver": ("nndl.optim",)}


class ModularAssignment:
    """The second assignment, its inputs drawn from ``seed``."""

    name = "fc_net"

    def __init__(self, seed: int = 0) -> None:
        self.layers = LayerParts(draw_layer_case(seed))
        self.optim = OptimParts(draw_optim_case(seed))
        self.nets = NetParts(draw_net_case(seed))
        self.overfit = draw_overfit_case(seed)

    def locate(self, path: Path) -> Target | None:
        path = path.resolve()
        if path.is_file():
            path = path.parent
        root = path.parent if path.name == "nndl" else path
        if not any((root / f).is_file() for f in FILES.values()):
            return None
        return Target("package", root, "nndl", root / "nndl")

    def expected_files(self) -> str:
        return ", ".join(FILES.values()) + " (the second assignment)"

    def part_ids(self) -> list[str]:
        return [p.id for p in self._parts(SolverPart(self.overfit, ""))]

    def _parts(self, solver: SolverPart) -> list[Part]:
        return [*self.layers.parts(), *self.optim.parts(), *self.nets.parts(), solver.part()]

    def plan(self, target: Target) -> Plan:
        root = target.root
        present = {m for m, f in FILES.items() if (root / f).is_file()}
        solver = SolverPart(self.overfit, solver_source(root))
        tasks = [*self.layers.tasks(), *self.optim.tasks(), *self.nets.tasks(),
                 solver.task()]
        tasks = [_mark_absent(replace(t, imports=_imports(t)), present) for t in tasks]
        return Plan(None, tasks, self._parts(solver), "importing the submission's modules")


def _imports(task: Task) -> tuple[str, ...]:
    """The submission's modules ``task`` imports."""
    return tuple(m for m in (task.module, *ALSO.get(task.id, ())) if m)


def _mark_absent(task: Task, present: set[str]) -> Task:
    """``task``, marked absent when a module it needs was not submitted."""
    missing = [FILES[m] for m in task.imports if m not in present]
    if not missing:
        return task
    return replace(task, absent=f"not submitted: {' and '.join(missing)} not found")
