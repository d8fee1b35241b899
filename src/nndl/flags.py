"""The configuration's command-line flags, built from its table of parameters.

One ``--flag`` per key of :data:`nndl.config.PARAMS` (``learning_rate`` ->
``--learning-rate``), for ``nndl train`` and ``nndl search``: its help is the key's help
with the command's default, its choices the key's choices, its type the key's annotation
(bool keys are ``--flag/--no-flag``). The values are checked by the configuration itself
(:func:`nndl.config.merge_config`), so a flag and a TOML key fail with one message.

:func:`markdown_table` is the README's table of the options, from the same table
(``python -m nndl.flags`` prints it; a test compares the README with it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nndl._params import Param
from nndl.config import PARAMS, RunConfig, merge_config, read_toml


def add_config_arguments(parser: argparse.ArgumentParser, base: RunConfig | None = None
                         ) -> None:
    """One ``--flag`` per configuration key (defaults left as None = not given; the help
    shows ``base``'s value, the command's own defaults), then ``--config TOML``."""
    defaults = (base or RunConfig()).to_dict()
    for name, p in PARAMS.items():
        _add_flag(parser, p, defaults[name])
    parser.add_argument("--config", metavar="TOML",
                        help="read options from a TOML file (flags override it)")


def _add_flag(parser: argparse.ArgumentParser, p: Param, default: Any) -> None:
    flag = "--" + p.name.replace("_", "-")
    text = p.help
    if "(default" not in text:
        text += f" (default: {default})"
    text = text.replace("%", "%%")  # argparse formats help with %
    if p.kinds == ("bool",):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                            help=text)
    elif p.choices:
        parser.add_argument(flag, choices=p.choices, default=None, help=text)
    else:
        parser.add_argument(flag, type=_flag_type(p), default=None, metavar=p.name.upper(),
                            help=text)


def _flag_type(p: Param) -> Callable[[str], Any]:
    """The argparse type of a key: its ``parse``, else from its annotation: int, float, a
    number (int or float: ``--num-validation 500`` or ``0.1``), or str."""
    if p.parse is not None:
        return p.parse
    kinds = set(p.kinds) - {"None"}
    if kinds == {"int", "float"}:
        return _number
    return {"int": int, "float": float}.get(next(iter(kinds)) if len(kinds) == 1 else "", str)


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Defaults (or ``base``) < the ``--config`` TOML file < flags given
    (:func:`nndl.config.merge_config`)."""
    source = getattr(args, "config", None)
    given = {name: getattr(args, name) for name in PARAMS
             if getattr(args, name, None) is not None}
    return merge_config(base, read_toml(source) if source else {}, given, source or "")


def markdown_table(base: RunConfig | None = None) -> str:
    """The options as a Markdown table: TOML key, flag, what it accepts, default (``base``'s,
    or ``nndl train``'s) and help, one row per key of :data:`nndl.config.PARAMS`."""
    defaults = (base or RunConfig()).to_dict()
    rows = ["| key | flag | accepts | default | what |", "|---|---|---|---|---|"]
    for name, p in PARAMS.items():
        cells = (f"`{name}`", f"`--{name.replace('_', '-')}`", p.describe(),
                 _toml(defaults[name]), p.help)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _toml(value):
    """``value`` as a TOML file writes it (None, which TOML cannot hold: "-", unset)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value!r}`"


__all__ = ["add_config_arguments", "config_from_args", "markdown_table"]


if __name__ == "__main__":
    print(markdown_table(), end="")
