"""What an assignment's checks are made of: tasks (child runs) and parts (verdict lines).

A :class:`Task` is one run of the student's code in a child (its steps and the names of the
values it sends back); a :class:`Part` is one line of the report, judged in nndl's process
from one task's values. Several parts may read one task (the loss and its four gradients
come from one call); a part lists the parts it builds on (``depends``), so that a part that
fails after one of those failed says so.

An :class:`Assignment` finds its module in a submission and builds its tasks and parts for
one run: the first assignment's is :mod:`nndl.grading.assignment1`, the second's
:mod:`nndl.grading.assignment2`; a :class:`nndl.grading.grader.Session` holds both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nndl.grading.discovery import Target
from nndl.grading.sandbox import Outcome
from nndl.grading.verdicts import Verdict


@dataclass(frozen=True)
class Passed:
    """A judge's finding that the value is right: what to say, and the numbers. A pass
    within a loose tolerance gives ``strictly``, its message as a failure: it stands only
    while every part it builds on passes (else the difference may be theirs)."""

    message: str
    value: Any = None
    expected: Any = None
    tolerance: float | None = None
    strictly: str = ""


@dataclass(frozen=True)
class Task:
    """One child run. ``steps`` (or a function making them, for steps that need prepared data)
    and ``returns`` as ``_child.py`` reads them; ``full`` runs under the --full limits, with
    ``extra_memory_mb`` more memory; ``needs`` names tasks that, when they time out (or are
    not run for that reason), make this one pointless (it calls the same code, which hangs),
    so it is not run. ``module`` is the submission's module the task loads as ``module``
    (``""``: the target's). A ``batch`` task runs with the plan's other batch tasks in one
    child, each failing alone; when that child as a whole does not finish (a hang, a crash),
    each runs again in a child of its own, within its own limits. A task whose code the
    submission lacks (a file not submitted) is not run: ``absent`` says what is missing, and
    its parts fail as ``missing``. ``imports`` names the submission's modules that must
    import before the task runs alone: each is imported once, in a child of its own within a
    task's limits, so that a module that fails or hangs while importing fails only the tasks
    that import it."""

    id: str
    steps: list[dict] | Callable[[], list[dict]]
    returns: list[str]
    full: bool = False
    needs: tuple[str, ...] = ()
    extra_memory_mb: Callable[[], int] = lambda: 0
    module: str = ""
    batch: bool = False
    absent: str = ""
    imports: tuple[str, ...] = ()

    def job_steps(self) -> list[dict]:
        return self.steps() if callable(self.steps) else self.steps


@dataclass(frozen=True)
class Part:
    """One line of the report: judged from ``task``'s values by ``judge``, which returns
    :class:`Passed` or raises :class:`~nndl.grading.verdicts.Wrong`."""

    id: str
    title: str
    task: str
    judge: Callable[[dict[str, Any]], Passed]
    depends: tuple[str, ...] = ()
    full: bool = False


@dataclass
class Plan:
    """An assignment's tasks and parts for one submission, the task that builds what every
    other needs (``setup``: imported module, network; ``setup_doing`` says what it does, for
    a setup that hangs; it runs before the tasks that run alone, and is not needed when the
    batch did every task; None: the tasks' ``imports`` are their only setup), and a hook
    that may add hints from the setup's values to failing verdicts."""

    setup: Task | None
    tasks: list[Task]
    parts: list[Part]
    setup_doing: str = "importing the submission and building its network"
    annotate: Callable[[list[Verdict], Outcome], list[str]] = field(
        default=lambda verdicts, setup: [])


class Assignment(Protocol):
    """An assignment nndl can check."""

    name: str

    def locate(self, path: Path) -> Target | None:
        """The assignment's module in the submission at ``path``, or None."""

    def expected_files(self) -> str:
        """Where the module is looked for, in words (for 'not found')."""

    def part_ids(self) -> list[str]:
        """The ids of the parts it checks (for a weights file)."""

    def plan(self, target: Target) -> Plan:
        """The tasks and parts that check ``target``."""
