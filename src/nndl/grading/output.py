"""What ``nndl check`` writes: the terminal table, JSON, Gradescope's ``results.json``, and
for a batch a summary (terminal lines, ``summary.csv`` and ``summary.html``: one row per
submission, one column per part).

Messages show values, never the reference's code. Part weights (for Gradescope's scores and
the summary's score column) come from a teacher's TOML file: ``part_id = weight`` lines,
at the top level or under ``[weights]``; a part not named weighs 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nndl import __version__
from nndl._atomic import atomic_path
from nndl.grading.grader import Settings, SubmissionResult
from nndl.grading.verdicts import PASS, SKIP, Verdict
from nndl.report import Report

TRACEBACK_LINES = 8


def header(settings: Settings, network: str) -> str:
    return (f"{settings.variant.course} conventions ({settings.variant.layout}, "
            f"{settings.variant.regularization}), seed {settings.seed}; {network}")


# -- one submission, for people -------------------------------------------------------------

def table(result: SubmissionResult) -> str:
    """The submission's parts, one line each, with what failed and why underneath."""
    width = max((len(v.title) for v in result.verdicts), default=10)
    lines = [f"{result.path}"] + [f"  note: {note}" for note in result.notes]
    shown: dict[tuple, str] = {}
    titles = {v.part: v.title for v in result.verdicts}
    for verdict in result.verdicts:
        mark = {PASS: "pass", SKIP: "skip"}.get(verdict.status, "FAIL")
        lines.append(f"  {mark}  {verdict.title:<{width}}  {verdict.message}")
        lines += [f"        {line}" for line in details(verdict, shown, titles)]
    lines.append(f"{result.passed_count} of {len(result.verdicts)} parts pass")
    return "\n".join(lines)


def details(verdict: Verdict, shown: dict[tuple, str] | None = None,
            titles: dict[str, str] | None = None) -> list[str]:
    """The lines under a failing verdict: what it builds on (the parts by their titles, as
    the report shows them), the hint, the traceback (once per report: a part failing with a
    traceback already shown names the part that showed it, when ``shown`` is given)."""
    lines = []
    if verdict.because:
        names = [(titles or {}).get(part, part) for part in verdict.because]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        lines.append(f"after: {listed} failed; this part builds on "
                     f"{'it' if len(names) == 1 else 'them'}: fix that first")
    if verdict.hint:
        lines.append(f"hint: {verdict.hint}")
    key = (verdict.message, tuple(verdict.traceback))
    if verdict.traceback and shown is not None and key in shown:
        lines.append(f"(traceback as for {shown[key]})")
    else:
        lines += verdict.traceback[-TRACEBACK_LINES:]
        if shown is not None:
            shown.setdefault(key, verdict.part)
    if verdict.output and verdict.kind in ("timeout", "crash", "no_result"):
        lines.append("its last output: " + " | ".join(verdict.output[-3:]))
    return lines


# -- machine-readable -----------------------------------------------------------------------

def to_json(results: Sequence[SubmissionResult], settings: Settings,
            network: str) -> dict[str, Any]:
    return {"nndl": __version__, "variant": settings.variant.name, "seed": settings.seed,
            "full": settings.full, "network": network,
            "passed": all(r.passed for r in results),
            "submissions": [r.to_dict() for r in results]}


def gradescope(result: SubmissionResult, weights: dict[str, float], settings: Settings,
               network: str) -> dict[str, Any]:
    """Gradescope's ``results.json``: one test per part, its score and max score."""
    tests = []
    titles = {v.part: v.title for v in result.verdicts}
    for number, verdict in enumerate(result.verdicts, 1):
        weight = weights.get(verdict.part, 1.0)
        text = "\n".join([verdict.message, *details(verdict, titles=titles)])
        tests.append({"name": verdict.title, "number": str(number),
                      "score": weight if verdict.passed else 0.0, "max_score": weight,
                      "status": "passed" if verdict.passed else "failed",
                      "output": text, "visibility": "visible"})
    notes = "".join(f"\nnote: {note}" for note in result.notes)
    return {"score": sum(t["score"] for t in tests),
            "output": f"nndl check {__version__}: {header(settings, network)}{notes}",
            "stdout_visibility": "hidden", "visibility": "visible", "tests": tests}


def read_weights(path: str | Path, part_ids: Sequence[str]) -> dict[str, float]:
    """``part_id -> weight`` from a teacher's TOML file; unknown parts and weights that are
    not non-negative numbers are errors (ValueError) naming the key."""
    from nndl._validation import closest_names
    from nndl.config import read_toml

    data = read_toml(path)
    data = data.get("weights", data) if isinstance(data.get("weights"), dict) else data
    weights = {}
    for key, value in data.items():
        if key not in part_ids:
            close = closest_names(key, list(part_ids))
            raise ValueError(f"weights file {path}: no part {key!r}" + (
                f"; did you mean {' or '.join(close)}?" if close else
                f"; parts: {', '.join(part_ids)}"))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"weights file {path}: {key} must be a number >= 0, got "
                             f"{value!r}")
        weights[key] = float(value)
    return weights


# -- a batch --------------------------------------------------------------------------------

def summary_lines(results: Sequence[SubmissionResult]) -> str:
    """One line per submission: parts passed, and the failing parts with why."""
    width = max(len(r.path) for r in results)
    lines = []
    for r in results:
        failing = [f"{v.part} ({v.kind})" if v.kind not in ("", "wrong") else v.part
                   for v in r.verdicts if not v.passed]
        kinds = {v.kind for v in r.verdicts}
        if r.passed_count == 0 and len(kinds) == 1 and len(failing) > 1:
            failing = [f"every part ({kinds.pop()})"]
        lines.append(f"{r.path:<{width}}  {r.passed_count:>2}/{len(r.verdicts):<2}  "
                     + ("all pass" if not failing else "failing: " + ", ".join(failing)))
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} submissions pass every part")
    return "\n".join(lines)


def _grid(results: Sequence[SubmissionResult], weights: dict[str, float]
          ) -> tuple[list[str], list[list[Any]]]:
    parts: list[str] = []
    for r in results:
        parts += [v.part for v in r.verdicts if v.part not in parts]
    header = ["submission", "passed", "parts", "score", "max_score", *parts]
    rows = []
    for r in results:
        by_part = {v.part: v for v in r.verdicts}
        score = sum(weights.get(v.part, 1.0) for v in r.verdicts if v.passed)
        top = sum(weights.get(v.part, 1.0) for v in r.verdicts)
        rows.append([r.path, r.passed_count, len(r.verdicts), f"{score:g}", f"{top:g}",
                     *(_cell(by_part.get(p)) for p in parts)])
    return header, rows


def _cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return ""
    if verdict.passed or verdict.status == SKIP:
        return verdict.status
    return "fail" if verdict.kind == "wrong" else verdict.kind


def write_summary(folder: Path, results: Sequence[SubmissionResult], settings: Settings,
                  network: str, weights: dict[str, float]) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.html`` in ``folder``."""
    header_row, rows = _grid(results, weights)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header_row)
    writer.writerows(rows)
    csv_path = folder / "summary.csv"
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    report = Report("nndl check: summary")
    report.paragraph(header(settings, network))
    report.paragraph(f"{sum(r.passed for r in results)} of {len(results)} submissions pass "
                     "every part. Cells: pass, fail (a wrong value), or why a part did not "
                     "finish (exception, missing, timeout, memory, crash, ...).")
    report.table(header_row, rows, sortable=True)
    for number, r in enumerate(results):
        report.section(r.path, section_id=f"submission-{number}")
        report.preformatted(table(r))
    return csv_path, report.write(folder / "summary.html")
