"""A full disk during a search: the error names the file and the run folder, the journal
keeps no torn record, and ``--resume`` on a disk with room again finishes the study.

Each test runs on a small tmpfs of its own (a mount namespace: ``unshare``)."""

import subprocess
import sys
import textwrap

import pytest

from tests.search.conftest import SMALL, small_disk_command


def test_a_journal_write_on_a_full_disk_names_the_file_and_leaves_no_torn_record(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    script = textwrap.dedent(f"""
        import optuna, os
        from nndl.search.storage import open_storage
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = "{disk}/study.journal"
        study = optuna.create_study(storage=open_storage(path), study_name="nndl")
        study.set_user_attr("before", 1)
        size = os.path.getsize(path)
        filler = os.open("{disk}/filler", os.O_WRONLY | os.O_CREAT)  # the rest of the disk
        try:
            while True:
                os.write(filler, b"x" * 4096)
        except OSError:
            os.close(filler)
        try:
            study.set_user_attr("big", "y" * 20000)  # more than a page: a partial write
        except OSError as exc:
            print("error:", exc)
        print("same size:", os.path.getsize(path) == size)
        os.remove("{disk}/filler")
        study.set_user_attr("after", 2)
        again = optuna.load_study(study_name="nndl", storage=open_storage(path))
        print("attrs:", sorted(again.user_attrs))
    """)
    result = subprocess.run([*small_disk_command(disk, "64k"), sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"No space left on device: '{disk}/study.journal'" in result.stdout
    assert "same size: True" in result.stdout
    assert "attrs: ['after', 'before']" in result.stdout


@pytest.mark.slow
def test_a_search_that_fills_its_disk_resumes_when_there_is_room(tmp_path, search_env):
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "run"
    args = ["--sampler", "random", "--trials", "6", "--population", "1", "--pruner", "none",
            "--num-iters", "50", "--hidden-size", "2", *SMALL, "--no-progress"]
    nndl = f'"{sys.executable}" -m nndl'
    script = textwrap.dedent(f"""
        {nndl} search {" ".join(args)} --out "{out}"; echo "first: $?"
        mount -o remount,size=20m "{disk}"
        {nndl} search --resume --out "{out}" --no-progress; echo "resumed: $?"
        {nndl} search status --out "{out}"; echo "status: $?"
    """)
    result = subprocess.run([*small_disk_command(disk, "160k"), "sh", "-c", script],
                            capture_output=True, text=True, env=search_env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    failure = [line for line in lines if line.startswith("nndl search: error:")]
    assert len(failure) == 1, result.stderr
    assert "No space left on device" in failure[0] and f"'{out}/" in failure[0]
    assert failure[0].endswith(f"what the run reached is in {out}")
    assert "first: 1" in result.stdout and "resumed: 0" in result.stdout
    assert "status: 0" in result.stdout
    table = result.stdout.split("resumed: 0")[1]
    assert table.count("COMPLETE") == 6


def test_a_run_that_fails_on_a_full_disk_says_where_its_work_is(tmp_path, monkeypatch):
    """When metrics.json cannot be written either, the error being raised still says where
    the run's folder is (a write hook stands in for the full disk)."""
    import errno

    import nndl.runs
    from nndl.cli import error_line
    from nndl.runs import RunRecorder

    recorder = RunRecorder(tmp_path, "search")

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nndl.runs, "write_json", full)
    try:
        with recorder.running():
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.npz"))
    except OSError as exc:
        line = error_line(exc)
    assert line.startswith(f"[Errno 28] No space left on device: '{tmp_path / 'x.npz'}'; "
                           f"what the run reached is in {tmp_path}")


def test_a_resume_on_a_full_disk_changes_nothing_and_names_the_file(tmp_path, search_env):
    """issue 22's re-probe: a resume on a full disk left a 0-byte INCOMPLETE and a settings
    record appended to the journal, and its error named no file."""
    from tests.fulldisk import fill, small_tmpfs
    from tests.search.conftest import nndl

    with small_tmpfs(tmp_path / "disk", size=8 << 20) as disk:
        out = disk / "run"
        first = nndl("search", "--sampler", "random", "--trials", "2", "--population", "1",
                     "--pruner", "none", "--num-iters", "10", "--hidden-size", "2", *SMALL,
                     "--no-progress", "--out", str(out), env=search_env)
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        fill(disk, 0)
        resumed = nndl("search", "--resume", "--trials", "4", "--out", str(out),
                       "--no-progress", env=search_env)
        assert resumed.returncode == 1
        assert f"No space left on device: '{out}/INCOMPLETE'" in resumed.stderr
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
