"""What the README promises about files of the repository stays true: the example
configuration, the notebook's install line, and no test counts that go stale."""

import re
import sys
from pathlib import Path

import pytest

from nndl.cli import build_parser
from nndl.config import read_toml
from nndl.flags import config_from_args

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "examples" / "train.toml"


def _pyproject():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _section(title):
    start = README.index(f"\n### {title}\n")
    return README[start:README.index("\n## ", start)]


def test_readme_shows_the_example_configuration_file():
    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert EXAMPLE.read_text() in blocks


def test_example_configuration_loads_through_nndl_train():
    """Every key of the file reaches the configuration, it is the 40-epoch configuration the
    README measured (h50-distilled's student), and a flag still wins over it."""
    from nndl.recipes import get_recipe

    args = build_parser().parse_args(["train", "--config", str(EXAMPLE)])
    config = config_from_args(args).to_dict()
    keys = read_toml(EXAMPLE)
    assert len(keys) == 15 and {k: config[k] for k in keys} == keys
    assert config == get_recipe("h50-distilled").config.to_dict()
    args = build_parser().parse_args(["train", "--config", str(EXAMPLE), "--hidden-size", "20"])
    assert config_from_args(args).hidden_size == 20


def test_notebook_section_says_how_to_open_them_with_an_extra_that_exists():
    section = _section("Notebooks")
    command = re.search(r"pip install -q -e '\.\[(\w+)\]' .*jupyter lab (\S+)", section)
    assert command is not None, section
    extra, folder = command.groups()
    assert (ROOT / folder).is_dir()
    listed = set(re.findall(r"`(\w[\w-]*\.ipynb)`", section))
    assert listed == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    extras = _pyproject()["project"]["optional-dependencies"]
    assert "jupyterlab>=4" in extras[extra] and "nndl[all]" in extras[extra]


def test_every_extra_the_readme_installs_exists():
    extras = _pyproject()["project"]["optional-dependencies"]
    named = {name for group in re.findall(r"\.\[([\w,-]+)\]", README)
             for name in group.split(",")}
    assert named and named <= set(extras), named - set(extras)


def test_readme_states_no_test_counts_that_go_stale():
    assert not re.findall(r"\b\d[\d,]* (?:tests|skips)\b", README)


@pytest.mark.slow
def test_the_gradcheck_table_shows_every_check_nndl_runs():
    from nndl.checks import run_toy_checks
    from nndl.layer_checks import run_course_checks

    block = re.search(r"```\n\$ nndl gradcheck\n(.*?)```", _section("Checks: `nndl gradcheck`"),
                      re.S).group(1)
    shown = [line.rsplit(maxsplit=3)[0].strip() for line in block.splitlines()
             if line.rstrip().endswith(("yes", "NO"))]
    results = run_toy_checks() + run_course_checks()
    assert shown == [r.check for r in results]
    assert f"all {len(results)} checks passed" in block


def test_the_options_table_is_the_configurations_own():
    """The README's table of options is the one ``python -m nndl.flags`` makes from the
    declarations in nndl.config (kinds, ranges, choices, defaults, help)."""
    from nndl.flags import markdown_table

    section = _section("Options")
    table = "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"
    assert table == markdown_table()
