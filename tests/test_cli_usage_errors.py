"""Usage errors: an unknown flag is reported by the command it was given to, with that
command's usage line and the closest of its own flags; a bad choice gets the closest choice.

In-process (``main``), as the parser is all that runs: argparse exits with status 2.
"""

import pytest

from nndl.cli import main


def usage_error(capsys, *argv):
    """(exit status, stderr) of ``nndl argv``."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv, usage, hint", [
    (("train", "--lr", "1e-3"), "usage: nndl train ", "did you mean --learning-rate?"),
    (("train", "--lr=1e-3"), "usage: nndl train ", "did you mean --learning-rate?"),
    (("train", "--num_iters", "5"), "usage: nndl train ", "did you mean --num-iters?"),
    (("reproduce", "--qiuck"), "usage: nndl reproduce ", "did you mean --quick?"),
    (("search", "run", "--trails", "8"), "usage: nndl search run ", "did you mean --trials?"),
    (("search", "status", "--stroage", "x"), "usage: nndl search status ",
     "did you mean --storage?"),
    (("search", "worker", "--stuyd", "x"), "usage: nndl search worker ",
     "did you mean --study?"),
    (("evaluate", "m.npz", "--splitt", "val"), "usage: nndl evaluate ",
     "did you mean --split?"),
    (("predict", "m.npz", "a.png", "--topp", "2"), "usage: nndl predict ",
     "did you mean --top?"),
    (("visualize", "m.npz", "--outt", "w.png"), "usage: nndl visualize ",
     "did you mean --out?"),
    (("data", "info", "folder", "--imagesize", "8x8"), "usage: nndl data info ",
     "did you mean --image-size?"),
    (("data", "download", "mnist", "--mdd5", "0"), "usage: nndl data download ",
     "did you mean --md5?"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_unknown_flag_gets_its_commands_usage_and_a_suggestion(capsys, argv, usage, hint):
    status, err = usage_error(capsys, *argv)
    assert status == 2
    assert err.startswith(usage), err  # not the top-level "usage: nndl [-h] [--version]"
    lines = err.strip().splitlines()
    assert lines[-1].startswith(usage[len("usage: "):-1] + ": error: unrecognized arguments: ")
    assert lines[-1].endswith(hint)


def test_search_without_action_names_the_flag_not_the_value(capsys):
    """``nndl search --trails 8``: argparse takes the 8 for an ACTION and says "invalid
    choice: '8'"; the flag is what went wrong."""
    status, err = usage_error(capsys, "search", "--trails", "8")
    assert status == 2 and err.startswith("usage: nndl search ")
    assert err.strip().endswith("nndl search: error: unrecognized arguments: --trails; did "
                                "you mean --trials?")


def test_no_suggestion_when_nothing_is_close(capsys):
    status, err = usage_error(capsys, "gradcheck", "--zzzz")
    assert status == 2 and err.startswith("usage: nndl gradcheck [-h]\n")
    assert err.strip().endswith("nndl gradcheck: error: unrecognized arguments: --zzzz")


def test_unique_prefixes_still_work_and_ambiguous_ones_list_their_flags(capsys):
    """allow_abbrev stays on: ``--learning`` is ambiguous, reported by train itself."""
    status, err = usage_error(capsys, "train", "--learning", "1e-3")
    assert status == 2 and err.startswith("usage: nndl train ")
    assert ("ambiguous option: --learning could match --learning-rate, --learning-rate-decay"
            in err) and "did you mean" not in err


@pytest.mark.parametrize("argv, prefix, hint", [
    (("trian",), "usage: nndl [-h]", "did you mean 'train'?"),
    (("data", "inof", "x"), "usage: nndl data ", "did you mean 'info'?"),
    (("train", "--optimizer", "adma"), "usage: nndl train ", "did you mean 'adam'?"),
])
def test_a_bad_choice_gets_the_closest_choice(capsys, argv, prefix, hint):
    status, err = usage_error(capsys, *argv)
    assert status == 2 and err.startswith(prefix)
    assert "invalid choice" in err and err.strip().endswith(hint)


def test_several_unknown_flags_each_get_their_suggestion():
    from nndl.cli import did_you_mean

    assert did_you_mean(["--lr", "1e-3", "--bs=100"], ["--learning-rate", "--batch-size"]) == (
        "; did you mean --learning-rate (for --lr), --batch-size (for --bs)?")
    assert did_you_mean(["--zzzz", "-1", "--"], ["--learning-rate"]) == ""


@pytest.mark.parametrize("top", ["-1", "0", "two"])
def test_predict_top_takes_a_positive_count(capsys, top):
    """``--top -1`` printed the classes (all but the last: ``[:-1]``) with status 0."""
    status, err = usage_error(capsys, "predict", "m.npz", "a.png", "--top", top)
    assert status == 2 and err.startswith("usage: nndl predict ")
    assert err.strip().endswith(f"nndl predict: error: argument --top: must be an int >= 1, "
                                f"got '{top}'")
