"""The ``nndl`` command run as a user runs it: in a subprocess."""

import subprocess
import sys


def run_nndl(*args, timeout=600, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "nndl", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def test_gradcheck_prints_table_and_passes():
    result = run_nndl("gradcheck")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "value", "tolerance", "pass"]
    rows = [line for line in lines[1:] if line.rstrip().endswith(("yes", "NO"))]
    assert len(rows) == 7 and all(r.rstrip().endswith("yes") for r in rows)


def test_help_lists_commands():
    result = run_nndl("--help")
    assert result.returncode == 0
    assert "gradcheck" in result.stdout


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
