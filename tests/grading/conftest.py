"""Submissions for the checker's tests: the course-style fixtures and copies of them with
one planted change. Each test grades in-process through a Session; the submissions' code
still runs only in children."""

import shutil
from pathlib import Path

import pytest

from nndl.grading import VARIANTS, Session, Settings

FIXTURES = Path(__file__).parent / "fixtures"
C147 = FIXTURES / "c147"
CS231N = FIXTURES / "cs231n"
C147_FC = FIXTURES / "c147_fc"  # the second assignment
STUDENT_FILE = "nndl/neural_net.py"


def plant(folder, *edits, source=C147, name="submission", file=STUDENT_FILE):
    """A copy of ``source`` in ``folder/name`` with each ``(old, new)`` of ``edits``
    replaced in its ``file`` (``old`` must occur exactly once)."""
    dest = Path(folder) / name
    shutil.copytree(source, dest)
    path = dest / file
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    return dest


def own_failures(result):
    """The parts that fail on their own (not only after a part they build on)."""
    return {v.part for v in result.verdicts if not v.passed and not v.because}


def verdict(result, part):
    return next(v for v in result.verdicts if v.part == part)


@pytest.fixture(scope="module")
def session():
    """Default settings (C147, seed 0) with a roomy time limit for a loaded machine."""
    with Session(Settings(timeout=30)) as s:
        yield s


@pytest.fixture(scope="module")
def quick_session():
    """A short time limit, for submissions that hang."""
    with Session(Settings(timeout=4)) as s:
        yield s


@pytest.fixture(scope="module")
def cs231n_session():
    with Session(Settings(variant=VARIANTS["cs231n"], timeout=30)) as s:
        yield s
