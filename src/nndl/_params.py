"""The parameter record: what one configuration key accepts, declared once.

A :class:`Param` rides in the metadata of a dataclass field (:func:`param` makes the
field) and says everything about the key but its name, annotation and default, which are
the field's own: the range (``low``..``high``, each end closed unless ``low_open`` or
``high_open``), the choices, any further ``check``, the help text, and ``shared`` (which
configurations must agree on it to share prepared data or one population). Everything that
validates, documents or parses the key reads it from here (:func:`params_of`): the
dataclass's ``__post_init__`` (:func:`check_params`), the command line's flags, the search
space's checks, the scikit-learn estimator and the README's table. scikit-learn's
``_parameter_constraints`` is the model; this one adds help, defaults and the CLI.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from nndl._validation import annotation_kinds, check_float, check_int, check_kinds

#: The values of :attr:`Param.shared`: none; configurations that share prepared data
#: agree on it; networks that train as one population (one minibatch stream, stacked
#: weights) agree on it.
SHARED = ("", "data", "population")


@dataclasses.dataclass(frozen=True)
class Param:
    """What one configuration key accepts, and its help.

    Attributes
    ----------
    help : str
        One line for ``--help``, the docs and the estimator's docstring.
    low, high : float, optional
        The numeric range (ints: ``low`` only); None: unbounded on that side.
    low_open, high_open : bool
        Whether that end is excluded.
    choices : tuple, optional
        The only values accepted (and the flag's choices).
    check : callable(name, value), optional
        A further check that raises naming the key (device names, "WxH" sizes).
    parse : callable(str), optional
        The flag's type: text -> value (default: from the kinds: int, float, a number for
        ``int | float``, else the text itself), for a key of another kind (a list of sizes).
    accepts : str
        What ``check`` accepts, in words, for the docs (default: :meth:`describe`'s
        words from the kinds, range and choices).
    shared : {"", "data", "population"}
        See :data:`SHARED`.
    name, kinds : str, tuple of str
        The field's name and annotation kinds (``("int", "None")``), filled in by
        :func:`params_of`.
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    check: Callable[[str, Any], object] | None = None
    parse: Callable[[str], Any] | None = None
    accepts: str = ""
    shared: str = ""
    name: str = ""
    kinds: tuple[str, ...] = ()

    def __post_init__(self):
        if self.shared not in SHARED:
            raise ValueError(f"shared must be one of {SHARED}, got {self.shared!r}")

    def validate(self, value: Any) -> None:
        """Raise TypeError or ValueError naming the key unless it accepts ``value``."""
        check_kinds(self.name, self.kinds, value)
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
        if self.bounded:
            self._check_range(value)
        if self.check is not None:
            self.check(self.name, value)

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None

    def _check_range(self, value):
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if "int" in self.kinds and isinstance(value, int) and self.high is None \
                and not self.low_open:
            check_int(self.name, value, minimum=int(low))
        else:
            check_float(self.name, value, float(low), float(high), exclusive_min=self.low_open,
                        exclusive_max=self.high_open)

    def describe(self) -> str:
        """The kind and range in words: ``'float in [0, 1)'``, ``'int >= 1'``,
        ``'{"sgd", "adam"}'``, ``'int or None'`` (or :attr:`accepts`)."""
        if self.accepts:
            return self.accepts
        if self.choices is not None:
            return "{" + ", ".join(f'"{c}"' if isinstance(c, str) else repr(c)
                                   for c in self.choices) + "}"
        kinds = " or ".join(self.kinds)
        if not self.bounded:
            return kinds
        number = " or ".join(k for k in self.kinds if k != "None")
        none = " or None" if "None" in self.kinds else ""
        if self.high is None:
            return f"{number} {'>' if self.low_open else '>='} {self.low:g}{none}"
        if self.low is None:
            return f"{number} {'<' if self.high_open else '<='} {self.high:g}{none}"
        return (f"{number} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}{none}")


def param(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with ``default`` whose metadata holds ``Param(help,
    **constraints)``: the one declaration of a configuration key."""
    return dataclasses.field(default=default,
                             metadata={"param": Param(help, **constraints)})


_TABLES: dict[type, dict[str, Param]] = {}


def params_of(cls: type) -> dict[str, Param]:
    """The :class:`Param` of every field of dataclass ``cls`` made by :func:`param`, with
    its name and annotation kinds filled in, in field order (made once per class)."""
    if cls not in _TABLES:
        _TABLES[cls] = {f.name: dataclasses.replace(f.metadata["param"], name=f.name,
                                                    kinds=tuple(annotation_kinds(f)))
                        for f in dataclasses.fields(cls) if "param" in f.metadata}
    return _TABLES[cls]


def check_params(obj: Any) -> None:
    """Validate every :class:`Param` field of dataclass instance ``obj``, in field order
    (the ``__post_init__`` of a configuration dataclass)."""
    for name, p in params_of(type(obj)).items():
        p.validate(getattr(obj, name))
