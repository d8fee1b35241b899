"""A study journal survives a torn write: a file cut anywhere in its last record (a full
disk, a killed process, ``truncate``) loads up to its last complete record, the torn bytes
are set aside before the next append, and every error about the file names it."""

import json
import shutil
import signal
import subprocess
import sys
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from nndl.search.journal import JournalError
from nndl.search.storage import open_storage
from tests.search.conftest import SMALL, nndl


def load(path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="nndl", storage=open_storage(str(path), create=False))


def summary(study):
    """What a study holds, to compare two loads: each trial's state, value and parameters."""
    return [(t.number, t.state, t.value, t.params) for t in study.get_trials(deepcopy=False)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, search_env):
    """The journal of a real finished search of 3 trials (bytes) and its run folder."""
    out = tmp_path_factory.mktemp("journal") / "run"
    result = nndl("search", "--sampler", "random", "--trials", "3", "--population", "1",
                  "--pruner", "none", "--num-iters", "20", *SMALL, "--no-progress", "--out",
                  str(out), env=search_env)
    assert result.returncode == 0, result.stdout + result.stderr
    return (out / "study.journal").read_bytes(), out


def last_record(data):
    """The offset where the last record of ``data`` (a journal ending in a newline) starts."""
    return data.rstrip(b"\n").rfind(b"\n") + 1


def test_a_journal_cut_at_every_offset_of_its_last_record_loads_and_takes_appends(
        finished, tmp_path):
    data, _ = finished
    start = last_record(data)
    complete = tmp_path / "complete.journal"
    complete.write_bytes(data[:start])
    expected = summary(load(complete))
    assert sum(t[1] == TrialState.COMPLETE for t in expected) >= 2
    for cut in range(start, len(data)):  # every byte count of the last record but its whole
        folder = tmp_path / f"cut-{cut}"
        folder.mkdir()
        path = folder / "study.journal"
        path.write_bytes(data[:cut])
        assert summary(load(path)) == expected, cut  # read up to its last complete record
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load(path).set_user_attr("after", cut)  # the first append sets the tail aside
        notes = [str(w.message) for w in caught]
        torn = data[start:cut]
        if torn:
            assert len(notes) == 1 and str(path) in notes[0], (cut, notes)
            asides = [p for p in folder.iterdir() if p.name.startswith("study.journal.torn")]
            assert [p.read_bytes() for p in asides] == [torn], cut
        else:
            assert notes == [], cut
        again = load(path)  # a fresh reader sees the appended record, and appends again
        assert again.user_attrs["after"] == cut and summary(again) == expected, cut
        again.set_user_attr("again", cut)
        assert load(path).user_attrs["again"] == cut
        assert path.read_bytes().startswith(data[:start]), cut  # complete records untouched


def test_a_journal_appended_after_its_torn_tail_by_an_older_nndl_is_read(finished, tmp_path):
    """Journals damaged before the fix: a torn record with a complete one glued after it
    (one line) lose neither the records before it nor the glued one, whatever the cut."""
    data, _ = finished
    start = last_record(data)
    whole = tmp_path / "whole.journal"
    whole.write_bytes(data)
    expected = summary(load(whole))
    glued = json.dumps({"op_code": 2, "worker_id": "old", "study_id": 0,  # a study user attr
                        "user_attr": {"glued": True}}, separators=(",", ":")).encode() + b"\n"
    for cut in range(start + 1, len(data)):
        path = tmp_path / f"glued-{cut}.journal"
        path.write_bytes(data[:cut] + glued + data[start:])  # the record written again after
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study = load(path)
        assert study.user_attrs["glued"] is True, cut
        assert summary(study) == expected, cut
        assert any(str(path) in str(w.message) for w in caught), cut


def test_a_damaged_line_inside_a_journal_is_an_error_naming_the_file_and_line(finished,
                                                                             tmp_path):
    data, _ = finished
    lines = data.splitlines(keepends=True)
    lines[3] = lines[3].replace(b":", b";", 1)  # no longer JSON, and not a torn record
    path = tmp_path / "study.journal"
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalError, match=f"{path}.*line 4"):
        load(path)


@pytest.mark.parametrize(("line", "problem"), [
    (b'{"op_code": 99}', "unknown op_code 99"),
    (b'{"op_code": 5}', "op_code 5 without worker_id, trial_id, param_name"),
    (b'{"op_code": "2", "worker_id": "w", "study_id": 0, "user_attr": {}}',
     "unknown op_code '2'"),
    (b'{}', "no op_code"),
])
def test_valid_json_that_is_no_optuna_record_is_a_damaged_line(finished, tmp_path,
                                                               search_env, line, problem):
    """issue 22's re-probe: such lines gave an AssertionError or a KeyError ("probably a
    bug in nndl") in ``search status`` and ``--resume``."""
    data, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "study.journal").write_bytes(data + line + b"\n")
    lines = data.count(b"\n") + 1
    for args in (["search", "status"], ["search", "--resume", "--no-progress"]):
        result = nndl(*args, "--out", str(out), env=search_env)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"{out}/study.journal is damaged at line {lines}" in result.stderr
        assert problem in result.stderr and "bug" not in result.stderr


def test_resume_and_status_after_truncate_keep_the_complete_trials(finished, tmp_path,
                                                                   search_env):
    """The issue's case: ``truncate -s -37 study.journal``, then resume and status."""
    _, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    journal = out / "study.journal"
    with open(journal, "r+b") as f:
        f.truncate(journal.stat().st_size - 37)
    before = summary(load(journal))  # the last trial's end is cut off: it runs again
    args = ["search", "--out", str(out), "--no-progress"]
    resumed = nndl(*args, "--resume", env=search_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "incomplete record" in resumed.stderr and "study.journal" in resumed.stderr
    after = summary(load(journal))
    kept = [t for t in before if t[1] == TrialState.COMPLETE]
    assert [t for t in after if t[0] in {k[0] for k in kept}] == kept
    assert sum(t[1] == TrialState.COMPLETE for t in after) == 3
    status = nndl("search", "status", "--out", str(out), env=search_env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("COMPLETE") == 3


def test_a_finished_search_leaves_no_lock_files(finished):
    _, out = finished
    assert sorted(p.name for p in out.iterdir()) == [
        "best", "metrics.json", "optimization_history.png", "report.html", "study.journal",
        "trials", "trials.csv"]


# A writer that freezes inside its append, after the write and before the fsync, holding
# the writers' lock; it says "held" then.
FROZEN_WRITER = """
import os, sys, time
from nndl.search.journal import JournalFile
def frozen(fd):
    print("held", flush=True)
    time.sleep(600)
os.fsync = frozen
JournalFile(sys.argv[1]).append_logs([{"op_code": 2, "worker_id": "w", "study_id": 0,
                                       "user_attr": {"killed_writer": 1}}])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_writer_killed_while_it_holds_the_lock_does_not_stall_the_next(finished, tmp_path,
                                                                         search_env):
    """Optuna's lock file stays behind a killed holder, and the next writer waited 30 s
    for Optuna to force it (with raw "[W ...]" log lines); nndl's lock goes with its
    holder's process."""
    data, _ = finished
    path = tmp_path / "study.journal"
    path.write_bytes(data)
    writer = subprocess.Popen([sys.executable, "-c", FROZEN_WRITER, str(path)],
                              env=search_env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "held\n"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.kill()
        writer.wait()
    assert path.with_name("study.journal.lock").exists()  # what the killed writer left
    start = time.monotonic()
    study = load(path)
    study.set_user_attr("after", 1)
    assert time.monotonic() - start < 5
    assert load(path).user_attrs["killed_writer"] == 1  # its record was written whole
    assert load(path).user_attrs["after"] == 1
    assert not path.with_name("study.journal.lock").exists()
