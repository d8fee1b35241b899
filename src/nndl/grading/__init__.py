"""``nndl check``: grade a student's own implementation of the assignment, part by part.

The student's code runs only in child processes (:mod:`~nndl.grading.sandbox`, the child
side in ``_child.py``), which send back plain data; every verdict is computed in nndl's
process against nndl's reference, and a failing part says where and, for the common
mistakes, which mistake (:mod:`~nndl.grading.mistakes`) without giving code.

Modules: ``discovery`` (where a submission's code is), ``wire`` (the plain data to and from
the child), ``sandbox`` (the child, its limits, network isolation), ``variants`` (C147's and
CS231n's conventions), ``toy`` (the toy problem drawn from the seed, the reference's
answers), ``mistakes`` (the reference with one mistake made), ``verdicts`` (a part's
result and the comparisons), ``parts`` (tasks, parts, assignments), ``assignment1`` (the
first assignment's parts), ``full`` (the --full data), ``grader`` (sessions, batches),
``output`` (table, JSON, Gradescope, summaries), ``command`` (the ``nndl check`` command).
"""

from nndl.grading.grader import Session, Settings, SubmissionResult, grade_all
from nndl.grading.variants import VARIANTS, Variant
from nndl.grading.verdicts import Verdict

__all__ = ["VARIANTS", "Session", "Settings", "SubmissionResult", "Variant", "Verdict",
           "grade_all"]
