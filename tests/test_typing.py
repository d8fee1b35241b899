"""The public API is typed: every public function and method of the modules users import
has annotations on its parameters and its return (``py.typed`` ships them; mypy checks the
bodies in CI)."""

import importlib
import inspect
from pathlib import Path

import pytest

PUBLIC = ["nndl", "nndl.neural_net", "nndl.layers", "nndl.layer_utils", "nndl.fc_net",
          "nndl.solver",
          "nndl.optim", "nndl.gradient_check",
          "nndl.data_utils", "nndl.vis_utils", "nndl.metrics", "nndl.model_io",
          "nndl.training", "nndl.schedules", "nndl.sampling", "nndl.config", "nndl.flags",
          "nndl.data",
          "nndl.data.datasets",
          "nndl.transforms", "nndl.sklearn",
          "nndl.grading.grader", "nndl.grading.verdicts", "nndl.grading.variants"]


def _functions(module):
    """(qualified name, function) of the module's own public functions and methods."""
    for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
        obj = getattr(module, name)
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                value = getattr(value, "__func__", value)  # classmethod, staticmethod
                value = getattr(value, "fget", value)  # property
                if inspect.isfunction(value):
                    yield f"{module.__name__}.{name}.{attr}", value


def _unannotated(qualname, fn):
    sig = inspect.signature(fn)
    missing = [f"{qualname}({p})" for p, v in sig.parameters.items()
               if p not in ("self", "cls") and v.annotation is v.empty]
    if sig.return_annotation is sig.empty:
        missing.append(f"{qualname} -> ?")
    return missing


@pytest.mark.parametrize("module_name", PUBLIC)
def test_public_api_is_annotated(module_name):
    module = importlib.import_module(module_name)
    missing = [m for name, fn in _functions(module) for m in _unannotated(name, fn)]
    assert missing == []


def test_the_package_ships_its_types():
    import nndl

    assert (Path(nndl.__file__).parent / "py.typed").is_file()
