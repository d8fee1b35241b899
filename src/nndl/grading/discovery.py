"""Where a submission's code is: a single ``.py`` file, or a folder laid out as the course
has it (``nndl/neural_net.py``; CS231n's ``cs231n/classifiers/neural_net.py``).

Nothing is imported here: files are only looked for. The child loads a package module from
its root folder (relative imports working, the student's ``nndl`` shadowing the installed
one) and a single file as a module of its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

#: Package names the courses use for the student's code.
PACKAGES = ("nndl", "cs231n")


@dataclass(frozen=True)
class Target:
    """One module of a submission: a package module under ``root`` (``kind`` ``package``,
    ``module`` e.g. ``nndl.neural_net``) or a single file (``kind`` ``file``)."""

    kind: str
    root: Path
    module: str
    path: Path

    def to_wire(self) -> dict[str, str]:
        return {"kind": self.kind, "root": str(self.root), "module": self.module,
                "path": str(self.path)}

    @property
    def shown(self) -> str:
        """The file, relative to the submission's root."""
        return self.path.relative_to(self.root).as_posix()


def find_module(path: Path, layouts: tuple[str, ...], stem: str) -> Target | None:
    """The module of a submission at ``path``: the first of ``layouts`` (relative file
    paths, e.g. ``nndl/neural_net.py``) under a folder; a folder that is itself the
    package (``.../nndl`` holding ``neural_net.py``); or ``path`` itself when it is a
    ``.py`` file. ``stem`` is the module's file name without ``.py``."""
    path = path.resolve()
    if path.is_file():
        return _file_target(path)
    for layout in layouts:
        found = path / layout
        if found.is_file():
            return _target_at(path, layout)
    if path.name in PACKAGES and (path / f"{stem}.py").is_file():
        return _target_at(path.parent, f"{path.name}/{stem}.py")
    return None


def _target_at(root: Path, layout: str) -> Target:
    parts = Path(layout).with_suffix("").parts
    if len(parts) == 1:
        return Target("file", root, _module_name(parts[0]), root / layout)
    return Target("package", root, ".".join(parts), root / layout)


def _file_target(path: Path) -> Target:
    """A lone file; one inside a course package folder is loaded as that package's module."""
    if path.parent.name in PACKAGES:
        return _target_at(path.parent.parent, f"{path.parent.name}/{path.name}")
    return Target("file", path.parent, _module_name(path.stem), path)


def _module_name(stem: str) -> str:
    """``stem``, unless it would shadow a module the child needs."""
    taken = set(sys.stdlib_module_names) | {"numpy", *PACKAGES}
    return stem if stem.isidentifier() and stem not in taken else "submission"
