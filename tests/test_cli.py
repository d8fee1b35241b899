"""The ``nndl`` command run as a user runs it: in a subprocess."""

import subprocess
import sys

import pytest


def run_nndl(*args, timeout=600, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "nndl", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def table_rows(stdout):
    """``{check: (value, tolerance, pass)}`` from ``nndl gradcheck``'s table."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["check", "value", "tolerance", "pass"]
    rows = {}
    for line in lines[1:]:
        if line.rstrip().endswith(("yes", "NO")):
            check, value, tolerance, passed = line.rsplit(maxsplit=3)
            rows[check.strip()] = (float(value), float(tolerance), passed)
    return rows


# The second assignment's rows and the tolerance each must pass at (the course's: gradients
# about 1e-8 in float64, comparisons with its 8-decimal values at their rounding).
COURSE_ROWS = {
    "affine_forward out vs the course's": 1e-9,
    "affine_backward dx, dw, db": 1e-8,
    "relu_forward out vs the course's": 1e-7,
    "relu_backward dx": 1e-8,
    "affine_relu dx, dw, db": 1e-8,
    "affine_batchnorm_relu dx, dw, db, dgamma, dbeta": 1e-8,
    "batchnorm_forward means, stds vs beta, gamma": 1e-7,
    "batchnorm_backward dx, dgamma, dbeta": 1e-8,
    "batchnorm_backward_alt dx, dgamma, dbeta": 1e-8,
    "dropout_forward p 0.75: kept, mean, test": 1e-2,
    "dropout_backward dx": 1e-8,
    "svm_loss dx": 1e-8,
    "softmax_loss dx": 1e-8,
    "sgd_momentum vs the course's": 1e-6,
    "sgd_nesterov_momentum vs the course's": 1e-6,
    "rmsprop vs the course's": 1e-6,
    "adam vs the course's": 1e-6,
    "fc_net.TwoLayerNet scores vs the course's: summed |difference|": 1e-6,
    "fc_net.TwoLayerNet loss, reg 0 and 1.0, vs the course's": 1e-10,
    "FullyConnectedNet [20, 30], reg 0: 6 gradients": 1e-7,
    "FullyConnectedNet [20, 30], batchnorm, reg 0: 10 gradients": 1e-7,
    "FullyConnectedNet [20, 30, 25, 15], reg 3.14: 10 gradients": 1e-7,
    "FullyConnectedNet [20, 30, 25, 15], batchnorm, reg 3.14: 18 gradients": 1e-7,
    "FullyConnectedNet [20, 30], dropout 0.5, reg 0: 6 gradients": 1e-7,
}


@pytest.mark.slow
def test_gradcheck_prints_table_and_passes():
    result = run_nndl("gradcheck")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert len(rows) == 7 + len(COURSE_ROWS)
    assert all(passed == "yes" for _, _, passed in rows.values())
    assert sum(check.startswith("toy ") for check in rows) == 7
    for check, tolerance in COURSE_ROWS.items():
        value, printed_tolerance, _ = rows[check]
        assert printed_tolerance == tolerance and value < tolerance, check
    assert "||numerical - analytic||" in result.stdout
    assert result.stdout.rstrip().endswith(f"all {len(rows)} checks passed")


BROKEN_LAYERS = {
    # dropout's backward pass forgetting its mask
    "dropout_backward dx": "layers.dropout_backward = lambda dout, cache: dout",
    # batch normalization's backward pass treating mean and variance as constants
    "batchnorm_backward dx, dgamma, dbeta":
        "layers.batchnorm_backward = lambda dout, cache: layers.batchnorm_backward_alt(\n"
        "    dout, cache[:3] + ('test',))",
    # an update rule with the course's momentum left out
    "sgd_momentum vs the course's":
        "optim.sgd_momentum = lambda w, dw, config: optim.sgd(w, dw, config)",
    # ReLU's backward pass letting every gradient through: every network's rows fail
    "FullyConnectedNet [20, 30, 25, 15], reg 3.14: 10 gradients":
        "layers.relu_backward = lambda dout, cache: dout",
}


@pytest.mark.parametrize("check", BROKEN_LAYERS)
@pytest.mark.slow
def test_gradcheck_fails_a_broken_layer(check):
    """A deliberately broken function (patched in before the command runs) fails its row,
    and the command exits 1 naming it."""
    script = ("import sys\nfrom nndl import cli, layers, optim\n" + BROKEN_LAYERS[check]
              + "\nsys.exit(cli.main(['gradcheck']))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1
    rows = table_rows(result.stdout)
    value, tolerance, passed = rows[check]
    assert passed == "NO" and value > 100 * tolerance
    assert "check(s) failed" in result.stderr and check in result.stderr
    assert rows["toy scores: summed |difference|"][2] == "yes"


def test_help_lists_commands():
    result = run_nndl("--help")
    assert result.returncode == 0
    assert "gradcheck" in result.stdout


def test_gradcheck_help_counts_its_rows_truly():
    """Update rules checked against the course's values: the four of UPDATE_RULE_CASES; the
    networks: NETWORKS, the dropout one included."""
    from nndl.layer_checks import NETWORKS, UPDATE_RULE_CASES

    text = " ".join(run_nndl("gradcheck", "--help").stdout.split())
    assert len(UPDATE_RULE_CASES) == 4 and "sgd" not in UPDATE_RULE_CASES
    assert "four of the five update rules (all but plain SGD)" in text
    assert any("dropout" in n for n in NETWORKS) and "once with dropout" in text


def test_unknown_command_is_a_usage_error():
    result = run_nndl("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_a_closed_pipe_exits_quietly():
    """``nndl ... | head -1``: no 'Broken pipe' error, no traceback."""
    script = ("import sys, nndl.cli as c\n"
              "c.cmd_gradcheck = lambda args: [print('row ' * 20) for _ in range(50000)]\n"
              "sys.exit(c.main(['gradcheck']))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("row")
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert stderr == ""


def test_choices_are_usage_errors():
    for flag, value in (("--optimizer", "sgdd"), ("--dtype", "float16"),
                        ("--batch-sampler", "random")):
        result = run_nndl("train", flag, value)
        assert result.returncode == 2 and f"argument {flag}: invalid choice" in result.stderr


def _complete(line):
    """What bash completes for ``line`` with the script of ``nndl completion bash``."""
    import os
    import shutil

    if shutil.which("bash") is None:
        import pytest

        pytest.skip("bash is not installed")
    script = (f'source <("{sys.executable}" -m nndl completion bash); '
              f'nndl() {{ "{sys.executable}" -m nndl "$@"; }}; '
              f'COMP_LINE="{line}"; COMP_POINT={len(line)}; read -ra COMP_WORDS <<< "$COMP_LINE"; '
              f'[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=(""); '
              'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _python_argcomplete nndl; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                         timeout=60)
    return sorted(w.strip() for w in out.stdout.split("\n") if w.strip())


def test_shell_completion_of_commands_flags_and_choices():
    assert _complete("nndl tr") == ["train"]
    assert _complete("nndl train --optim") == ["--optimizer"]
    assert _complete("nndl train --optimizer ad") == ["adam", "adamw"]
    assert {"bash", "fish", "zsh"} <= set(_complete("nndl completion "))


def test_search_actions_are_subcommands_with_their_own_help():
    status = run_nndl("search", "status", "--help")
    assert status.returncode == 0 and "usage: nndl search status" in status.stdout
    assert "--trials" not in status.stdout and "--storage" in status.stdout
    assert "usage: nndl search worker" in run_nndl("search", "worker", "--help").stdout
    assert "--trials" in run_nndl("search", "run", "--help").stdout
