"""Grading submissions: run each assignment's tasks in children, judge every part.

A :class:`Session` holds one run's settings and what is computed once for all submissions
(the drawn toy problem, the reference's answers, the --full data); :meth:`Session.grade`
checks one submission, :func:`grade_all` many, ``jobs`` at a time. A submission's code
runs only in children (:mod:`nndl.grading.sandbox`); every verdict is computed here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nndl.grading import wire
from nndl.grading.assignment1 import TwoLayerNetAssignment
from nndl.grading.assignment2 import ModularAssignment
from nndl.grading.full import FullDataSource
from nndl.grading.parts import Assignment, Part, Plan, Task
from nndl.grading.sandbox import Limits, Outcome, run_job
from nndl.grading.variants import VARIANTS, Variant
from nndl.grading.verdicts import FAIL, PASS, SKIP, Verdict, Wrong

#: Below this many seconds of the --full budget, a full run is not started.
MIN_FULL_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    """One run's settings (the command's flags)."""

    variant: Variant = VARIANTS["c147"]
    seed: int = 0
    timeout: float = 20.0  # seconds per toy task
    memory_mb: int = 1024
    full: bool = False
    full_timeout: float = 600.0
    budget: float | None = None  # seconds for every --full run of the session together
    data: str | None = None
    full_sizes: tuple[int, int] = (49000, 1000)  # training and validation images


@dataclass
class SubmissionResult:
    """One submission's verdicts, in part order, and notes about it."""

    path: str
    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def passed_count(self) -> int:
        return sum(v.passed for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "passed": self.passed,
                "parts_passed": self.passed_count, "parts": len(self.verdicts),
                "notes": self.notes, "seconds": round(self.seconds, 3),
                "verdicts": [v.to_dict() for v in self.verdicts]}


class FullBudget:
    """The --full runs' shared wall-clock budget, counted from the first full run."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._deadline: float | None = None
        self._lock = threading.Lock()

    def allow(self, wanted: float) -> float:
        """Seconds a full run may take now (0: the budget is spent)."""
        if self.seconds is None:
            return wanted
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self.seconds
            left = self._deadline - time.monotonic()
        return min(wanted, left) if left >= MIN_FULL_SECONDS else 0.0


class Session:
    """A run of ``nndl check``: settings and what is shared by its submissions. Close it
    (or use it as a context manager) to remove the --full data's temporary files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.full_data = (FullDataSource(settings.data, *settings.full_sizes)
                          if settings.full else None)
        self.assignments: list[Assignment] = [
            TwoLayerNetAssignment(settings.variant, settings.seed, self.full_data),
            ModularAssignment(settings.seed)]
        self.budget = FullBudget(settings.budget)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop: running children are killed and no task starts any more (its parts fail
        as ``not_run``)."""
        self._cancel.set()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.full_data is not None:
            self.full_data.close()

    def part_ids(self) -> list[str]:
        """Every part's id, in report order ("files" fails a submission without code)."""
        return [i for a in self.assignments for i in a.part_ids()] + ["files"]

    def grade(self, path: str | Path, only: set[str] | None = None) -> SubmissionResult:
        """Every part of every assignment found in the submission at ``path`` (or the parts
        named in ``only``)."""
        started = time.monotonic()
        verdicts: list[Verdict] = []
        notes: list[str] = []
        found = [(a, a.locate(Path(path))) for a in self.assignments]
        for assignment, target in found:
            if target is None:
                continue
            plan = _only(assignment.plan(target), only)
            outcomes, setup = self._run(plan, target.to_wire())
            these = [_verdict(part, outcomes[part.task]) for part in plan.parts]
            _label_dependencies(plan.parts, these, {t.id for t in plan.tasks if t.absent})
            notes += plan.annotate(these, setup)
            verdicts += these
        if not any(target for _, target in found):
            verdicts.append(self._no_files(Path(path)))
        return SubmissionResult(str(path), verdicts, notes, time.monotonic() - started)

    def _no_files(self, path: Path) -> Verdict:
        wanted = "; ".join(a.expected_files() for a in self.assignments)
        message = f"no file to check: expected {wanted}"
        below = path.is_dir() and any(a.locate(sub) for sub in path.iterdir() if sub.is_dir()
                                      for a in self.assignments)
        if below:
            message += f"; its folders hold submissions: check them with 'nndl check {path}/*'"
        return Verdict("files", "the assignment's files", FAIL, message, kind="missing")

    def _run(self, plan: Plan, target: dict) -> tuple[dict[str, Outcome], Outcome]:
        """Each task's outcome. The batch tasks run first, in one child; the tasks left (all
        of them when that child did not finish) run after the setup (import, building the
        network), and when the setup fails, that failure stands for each of them."""
        outcomes: dict[str, Outcome] = {
            t.id: Outcome(False, kind="missing", message=t.absent)
            for t in plan.tasks if t.absent}
        outcomes.update(self._run_batch([t for t in plan.tasks
                                         if t.batch and t.id not in outcomes], target))
        left = [t for t in plan.tasks if t.id not in outcomes]
        if not left:  # the batch did it all: no setup needed
            return outcomes, Outcome(True)
        setup = Outcome(True) if plan.setup is None else self._run_task(plan.setup, target)
        if setup.kind in ("timeout", "crash", "no_result"):
            setup.message += f" ({plan.setup_doing})"
        imported: dict[str, Outcome] = {}
        for task in left:
            failed = self._imports(task, target, imported)
            if self._cancel.is_set():
                outcomes[task.id] = Outcome(False, kind="not_run", message="not run: "
                                            "interrupted")
            elif not setup.ok:
                outcomes[task.id] = setup
            elif failed is not None:
                outcomes[task.id] = failed
            elif (skip := _needless(task, outcomes)) is not None:
                outcomes[task.id] = skip
            else:
                outcomes[task.id] = self._run_task(task, target)
        return outcomes, setup

    def _imports(self, task: Task, target: dict, imported: dict[str, Outcome]
                 ) -> Outcome | None:
        """The failure of the first of ``task.imports`` that does not import, each module
        imported once (``imported`` keeps the outcomes), in a child of its own."""
        for module in task.imports:
            if module not in imported and not self._cancel.is_set():
                imported[module] = _imported(module, self._run_task(
                    Task(f"import {module}", [], [], module=module), target))
            if module in imported and not imported[module].ok:
                return imported[module]
        return None

    def _run_task(self, task: Task, target: dict) -> Outcome:
        s = self.settings
        if not task.full:
            limits = Limits(s.timeout, s.memory_mb)
        else:
            seconds = self.budget.allow(s.full_timeout)
            if seconds <= 0:
                return Outcome(False, kind="budget", message=f"not run: the --full time budget "
                               f"of {s.budget:g} s was spent")
            limits = Limits(seconds, s.memory_mb + task.extra_memory_mb())
        if task.module:
            target = {**target, "kind": "package", "module": task.module}
        return run_job({"target": target, "steps": task.job_steps(), "returns": task.returns},
                       limits, self._cancel)

    def _run_batch(self, tasks: list[Task], target: dict) -> dict[str, Outcome]:
        """The outcomes of ``tasks`` run in one child, within one task's limits; none when
        that child did not finish as a whole (a hang, a crash, a package that fails to
        import: its tasks then run one by one, after the setup)."""
        if len(tasks) < 2 or self._cancel.is_set():
            return {}
        steps = [wire.part(t.id, t.module, t.job_steps(), t.returns) for t in tasks]
        limits = Limits(self.settings.timeout, self.settings.memory_mb)
        batch = run_job({"target": target, "steps": steps, "returns": []}, limits, self._cancel)
        if not batch.ok:
            return {}
        return {t.id: batch.parts[t.id] for t in tasks if t.id in batch.parts}


def _only(plan: Plan, only: set[str] | None) -> Plan:
    """``plan`` cut to the parts named in ``only`` and the tasks they read."""
    if only is None:
        return plan
    parts = [p for p in plan.parts if p.id in only]
    tasks = [t for t in plan.tasks if any(p.task == t.id for p in parts)]
    return replace(plan, tasks=tasks, parts=parts)


def _imported(module: str, outcome: Outcome) -> Outcome:
    """The outcome of importing ``module`` alone, a hang or crash naming its file."""
    file = module.replace(".", "/") + ".py"
    if outcome.kind == "timeout":
        outcome.message = f"importing {file} {outcome.message}"
    elif outcome.kind in ("crash", "no_result"):
        outcome.message = f"importing {file}: {outcome.message}"
    return outcome


NOT_RUN_AFTER = "not run: part "


def _needless(task: Task, outcomes: dict[str, Outcome]) -> Outcome | None:
    """Why ``task`` is not run: a task it needs timed out (or was not run for that reason:
    it calls that code too), else None."""
    for need in task.needs:
        before = outcomes.get(need)
        if before is not None and before.kind in ("timeout", "budget"):
            return Outcome(False, kind="not_run", message=f"{NOT_RUN_AFTER}{need!r} "
                           f"{before.message}, and this part calls the same code")
        if before is not None and before.message.startswith(NOT_RUN_AFTER):
            return Outcome(False, kind="not_run", message=before.message)  # calls it too
    return None


def _verdict(part: Part, outcome: Outcome) -> Verdict:
    """``part``'s verdict from its task's outcome."""
    if not outcome.ok:
        status = SKIP if outcome.kind == "budget" else FAIL
        where = f"{outcome.label}: " if outcome.label and outcome.kind in (
            "exception", "memory") else ""
        return Verdict(part.id, part.title, status, where + outcome.message, kind=outcome.kind,
                       traceback=outcome.traceback, output=outcome.output,
                       seconds=outcome.seconds)
    try:
        found = part.judge(outcome.values)
    except Wrong as wrong:
        return Verdict(part.id, part.title, FAIL, wrong.message, kind="wrong", hint=wrong.hint,
                       value=wrong.value, expected=wrong.expected, tolerance=wrong.tolerance,
                       seconds=outcome.seconds)
    verdict = Verdict(part.id, part.title, PASS, found.message, value=found.value,
                      expected=found.expected, tolerance=found.tolerance,
                      seconds=outcome.seconds)
    verdict.strictly = found.strictly
    return verdict


def _label_dependencies(parts: list[Part], verdicts: list[Verdict], absent: set[str]
                        ) -> None:
    """A failing part whose prerequisites failed names them in ``because`` (not one whose
    file was not submitted: that is its reason); a loose pass (``strictly`` set) whose
    prerequisites failed becomes that failure."""
    failed = {v.part for v in verdicts if v.status == FAIL}
    for part, verdict in zip(parts, verdicts):
        if verdict.status == PASS and verdict.strictly and failed & set(part.depends):
            verdict.status, verdict.kind, verdict.message = FAIL, "wrong", verdict.strictly
        if verdict.status == FAIL and part.task not in absent:
            verdict.because = [d for d in part.depends if d in failed]


def grade_all(session: Session, paths: list[str], jobs: int = 1,
              progress: Callable[[int, SubmissionResult], None] | None = None
              ) -> list[SubmissionResult]:
    """Every submission of ``paths``, ``jobs`` at a time (threads: each waits on its
    children); results in the order of ``paths``. ``progress(done, result)`` is called as
    each finishes."""
    results: list[SubmissionResult | None] = [None] * len(paths)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(session.grade, path): i for i, path in enumerate(paths)}
        for done, future in enumerate(as_completed(futures), 1):
            result = future.result()
            results[futures[future]] = result
            if progress is not None:
                progress(done, result)
    except BaseException:  # Ctrl-C: kill the running children, start nothing new
        session.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]
