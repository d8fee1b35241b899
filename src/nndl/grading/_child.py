"""The child side of ``nndl check``: runs a student's code on inputs the parent sends.

Started as a script (``python -I _child.py LIMITS``), never imported by nndl: the student's
package is named ``nndl`` too, and in this process it is the only ``nndl``. It imports the
standard library and NumPy, nothing of the installed nndl.

The parent sends a job as JSON on stdin: where the submission is (``target``), a list of
``steps`` (seed NumPy's global RNG; call a function or method and keep what it returns;
keep a value under a name; put an array into a container; import another module of the
submission, or a helper file of the checker's that imports no nndl; take numerical-gradient
samples; snapshot a value), the names of the values to send back (``returns``) and the file
to write them to (``result``). A ``part`` step is a whole task of its own (the module it
loads as ``module``, its steps, its values): a batch of them runs in one child, and an
exception, a missing name or a failed import fails only its part.
Arguments are plain JSON, arrays (``{"$array": {"shape", "data"}}``), files of the parent's
(``{"$npy": path}``; ``{"$rows": [uint8 .npy, mean .npy]}``: float64 rows minus the mean
row), or references to earlier results (``{"$ref": name, "path": [".attr", "key", 0]}``).

The result is JSON again: ``{"ok": true, "values": {...}}`` with every value encoded as plain
data (and ``"parts": {name: result}``, one such result per ``part`` step), or
``{"ok": false, "step": i, "kind": ..., "message": ..., "traceback": [...]}`` where kind is
``import``, ``missing`` (a function or attribute the student did not define, named),
``exception`` or ``memory``, and the traceback holds only the student's own frames. The
parent judges everything; nothing here knows the expected answers.
"""

import errno
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import traceback

MAX_ELEMENTS = 2_000_000  # of one array sent back; beyond it only the type and shape go back
OUTPUT_TAIL = (4096, 5)  # bytes read, lines kept: a failing part's last printed lines
LIMITS: dict = {}  # this run's, as main read them


def main():
    limits = json.loads(sys.argv[1])
    LIMITS.update(limits)
    apply_limits(limits)
    outlive_no_deadline(limits.get("wall"))
    os.dup2(2, 1)  # the student's prints go to the output file, never into our channel
    job = json.loads(sys.stdin.read())
    result = run_job(job)
    with open(job["result"], "w", encoding="utf-8") as f:
        json.dump(result, f)


def apply_limits(limits):
    """Address space, CPU seconds and file size, set before NumPy or the student's code. The
    hard limits are set too, so the student's code cannot raise them again."""
    try:
        import resource
    except ImportError:  # not on POSIX: the parent's time limit only
        return
    for name, value, grace in (("RLIMIT_AS", limits.get("memory"), 0),
                               ("RLIMIT_CPU", limits.get("cpu"), 2),
                               ("RLIMIT_FSIZE", limits.get("fsize"), 0)):
        if value and hasattr(resource, name):
            which = getattr(resource, name)
            hard = resource.getrlimit(which)[1]
            if hard != resource.RLIM_INFINITY:
                value, grace = min(value, hard), min(grace, max(hard - value, 0))
            resource.setrlimit(which, (value, value + grace))


def outlive_no_deadline(seconds):
    """End this process ``seconds`` from now whatever it is doing, even when the parent
    that keeps the deadline is gone (killed, or interrupted while it waited): SIGALRM with a
    handler of our own (as a PID namespace's first process, one without a handler would be
    ignored)."""
    import signal

    if seconds and hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, lambda *_: os._exit(124))
        signal.alarm(int(seconds) + 1)


class Missing(Exception):
    """The student's code lacks a name the job needs."""


def run_job(job):
    target = job["target"]
    env = {}
    try:
        env["module"] = load_target(target)
    except BaseException as exc:  # noqa: B036 - SystemExit and all: the student's to answer for
        return failure(None, "import", exc, target["root"])
    parts = {}
    LIMITS["output"] = job.get("output")
    result = run_steps(job["steps"], env, job.get("returns", []), target["root"], parts)
    if parts and result["ok"]:
        result["parts"] = parts
    return result


def run_steps(steps, env, returns, root, parts=None):
    """Run ``steps`` in ``env``; the result (values or the first failure), as ``run_job``'s.
    ``part`` steps put their own results in ``parts``."""
    kept = {}
    for index, step in enumerate(steps):
        try:
            if step["do"] == "part" and parts is not None:
                parts[step["name"]] = run_part(step, env, root)
            else:
                run_step(step, env, kept, root)
        except Missing as exc:
            return {"ok": False, "step": index, "label": step.get("label", ""),
                    "kind": "missing", "message": str(exc), "traceback": []}
        except BaseException as exc:  # noqa: B036
            kind = "import" if step["do"] == "import" else "exception"
            return failure(index, kind, exc, root, step.get("label", ""))
    values = {name: kept[name] if name in kept else encode(env[name]) for name in returns}
    return {"ok": True, "values": values}


def run_part(step, env, root):
    """One task of a batch, in names of its own: ``module`` is the submission's module the
    step names (else the job's), and its failure is its own, with the last lines it printed
    (each part starts an empty output file, so that one part printing too much fails alone).
    """
    started = time.monotonic()
    fresh_output()
    own = {}
    try:
        own["module"] = (import_submodule(root, step["module"]) if step.get("module")
                         else env["module"])
    except BaseException as exc:  # noqa: B036
        result = failure(None, "import", exc, root)
    else:
        result = run_steps(step["steps"], own, step.get("returns", []), root)
    result["seconds"] = time.monotonic() - started
    if not result["ok"]:
        result["output"] = output_tail()
    return result


def fresh_output():
    """Empty the output file (stdout and stderr share it) and write from its start."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.ftruncate(1, 0)
        os.lseek(1, 0, os.SEEK_SET)
    except OSError:  # not a file: nothing to empty
        pass


def output_tail():
    """The last lines printed to the output file (read by its path, at most a few kB)."""
    path = LIMITS.get("output")
    size, count = OUTPUT_TAIL
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - size, 0))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:200] for line in text.splitlines()[-count:]]


def failure(index, kind, exc, root, label=""):
    if isinstance(exc, MemoryError):
        kind = "memory"
    message, trace = exception_line(exc), student_frames(exc, root)
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG and LIMITS.get("fsize"):
        message = (f"printed more than the limit ({LIMITS['fsize'] // 2**20} MB) of output "
                   f"(or wrote a file over it)")
    where = syntax_error_place(exc, root)
    if where:
        message += f" ({where[0]}, line {where[1]})"
        trace.append(f'File "{where[0]}", line {where[1]}')
        if where[2]:
            trace.append(f"    {where[2]}")
    return {"ok": False, "step": index, "label": label, "kind": kind,
            "message": message, "traceback": trace}


def syntax_error_place(exc, root):
    """Where a SyntaxError in the submission's own files is: the file (relative to the
    submission), the line number and the line's text; None for other errors."""
    if not isinstance(exc, SyntaxError) or not exc.filename:
        return None
    root = os.path.realpath(root)
    path = os.path.realpath(exc.filename)
    if not path.startswith(root + os.sep):
        return None
    return os.path.relpath(path, root), exc.lineno, (exc.text or "").strip()


def exception_line(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def student_frames(exc, root):
    """The traceback lines of frames in the submission's own files, paths made relative."""
    root = os.path.realpath(root)
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.realpath(frame.filename)
        if not path.startswith(root + os.sep):
            continue
        lines.append(f'File "{os.path.relpath(path, root)}", line {frame.lineno}, '
                     f"in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return lines


# -- loading the submission -------------------------------------------------------------

def load_target(target):
    """The student's module: a package module (``nndl.neural_net`` under ``root``, relative
    imports working, shadowing any installed package of that name) or a single file."""
    root = target["root"]
    sys.path.insert(0, root)
    if target["kind"] == "file":
        name = target["module"]
        spec = importlib.util.spec_from_file_location(name, target["path"])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    install_package(root, target["module"].split(".")[0])
    return importlib.import_module(target["module"])


def import_submodule(root, name):
    """The submission's module ``name`` (``nndl.optim``, ``utils.solver``), its top package
    being the submission's own folder."""
    top = name.split(".")[0]
    folder = os.path.join(root, top)
    loaded = sys.modules.get(top)
    if loaded is None or folder not in list(getattr(loaded, "__path__", [])):
        install_package(root, top)
    return importlib.import_module(name)


def load_helper(path):
    """A helper file of the checker's (stdlib and NumPy only, never nndl) as a module."""
    name = "_nndl_check_" + os.path.splitext(os.path.basename(path))[0].lstrip("_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_package(root, top):
    """Make ``top`` the package in ``root/top``, whatever else sys.path holds."""
    folder = os.path.join(root, top)
    init = os.path.join(folder, "__init__.py")
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        del sys.modules[name]
    if os.path.isfile(init):
        spec = importlib.util.spec_from_file_location(top, init,
                                                      submodule_search_locations=[folder])
    else:  # a folder without __init__.py is still the student's package
        spec = importlib.machinery.ModuleSpec(top, None, is_package=True)
        spec.submodule_search_locations = [folder]
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    if spec.loader is not None:
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[top]
            raise


# -- steps ------------------------------------------------------------------------------

def run_step(step, env, kept, root):
    import numpy as np

    kind = step["do"]
    if kind == "seed":
        np.random.seed(step["seed"])
    elif kind == "call":
        env[step["name"]] = call(step, env)
    elif kind == "let":
        env[step["name"]] = decode(step["value"], env)
    elif kind == "import":
        env[step["name"]] = (load_helper(step["file"]) if step.get("file")
                             else import_submodule(root, step["module"]))
    elif kind == "set":
        container = resolve(step["target"], env)
        try:
            container[step["key"]] = decode(step["value"], env)
        except TypeError:
            raise Missing(f"{describe(step['target'])} is not a dict of arrays") from None
    elif kind == "snapshot":
        kept[step["name"]] = encode(resolve(step["of"], env))
    elif kind == "numeric":
        kept[step["name"]] = numeric_samples(step, env)
    else:
        raise ValueError(f"unknown step {kind!r}")


def call(spec, env):
    function = resolve(spec["fn"], env)
    if not callable(function):
        raise Missing(f"{describe(spec['fn'])} is not callable")
    args = [decode(a, env) for a in spec.get("args", [])]
    kwargs = {k: decode(v, env) for k, v in spec.get("kwargs", {}).items()}
    return function(*args, **kwargs)


def numeric_samples(step, env):
    """f(x + h e_i) and f(x - h e_i) for every entry i of the array ``step["array"]``, where
    f is ``step["call"]`` picked by ``step["pick"]``; x is restored after each entry."""
    import numpy as np

    x = resolve(step["array"], env)
    if not isinstance(x, np.ndarray):
        raise Missing(f"{describe(step['array'])} is not a NumPy array")
    h = step["h"]
    plus, minus = [], []
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        plus.append(encode(pick(call(step["call"], env), step["pick"])))
        x[ix] = old - h
        minus.append(encode(pick(call(step["call"], env), step["pick"])))
        x[ix] = old
    return {"$dict": {"plus": {"$list": plus}, "minus": {"$list": minus}}}


def pick(value, path):
    for key in path:
        value = value[key]
    return value


def resolve(ref, env):
    """The object ``{"$ref": name, "path": [...]}`` names; a missing attribute or key is
    reported by name (``TwoLayerNet has no method 'predict'``)."""
    value = env[ref["$ref"]]
    for key in ref.get("path", []):
        if isinstance(key, str) and key.startswith("."):
            attr = key[1:]
            if not hasattr(value, attr):
                raise Missing(f"{owner_name(value)} defines no {attr!r}")
            value = getattr(value, attr)
        else:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                raise Missing(f"{describe(ref)} has no entry {key!r}") from None
    return value


def owner_name(value):
    if type(value).__name__ == "module":
        return f"{value.__name__.replace('.', '/')}.py"
    return value.__name__ if isinstance(value, type) else type(value).__name__


def describe(ref):
    return ref.get("$ref", "?") + "".join(
        key if isinstance(key, str) and key.startswith(".") else f"[{key!r}]"
        for key in ref.get("path", []))


# -- plain data in and out --------------------------------------------------------------

def decode(value, env):
    """A job argument as a Python object (arrays as float64/int64 NumPy arrays)."""
    import numpy as np

    if isinstance(value, dict):
        if "$array" in value:
            spec = value["$array"]
            return np.array(spec["data"], dtype=spec.get("dtype", "float64")).reshape(
                spec["shape"])
        if "$ref" in value:
            return resolve(value, env)
        if "$npy" in value:
            return np.load(value["$npy"], allow_pickle=False)
        if "$rows" in value:
            rows_path, mean_path = value["$rows"]
            rows = np.load(rows_path, allow_pickle=False).astype(np.float64)
            rows -= np.load(mean_path, allow_pickle=False)
            return rows
        return {k: decode(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, env) for v in value]
    return value


def encode(value, depth=0):
    """Plain JSON for whatever the student's code returned: numbers, strings, None;
    ``$array`` for arrays, ``$tuple``, ``$list``, ``$dict`` for containers; ``$type`` for
    anything else (its type's name, and shape where it has one)."""
    import numpy as np

    if depth > 4:
        return {"$type": type(value).__name__}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.size > MAX_ELEMENTS:
            return {"$type": f"ndarray of {value.dtype}", "shape": list(value.shape)}
        data = value.astype(np.float64 if value.dtype.kind == "f" else np.int64).ravel()
        return {"$array": {"shape": list(value.shape), "dtype": value.dtype.kind,
                           "data": data.tolist()}}
    if isinstance(value, (tuple, list)):
        kind = "$tuple" if isinstance(value, tuple) else "$list"
        return {kind: [encode(v, depth + 1) for v in value[:1000]]}
    if isinstance(value, dict):
        return {"$dict": {str(k): encode(v, depth + 1) for k, v in list(value.items())[:100]}}
    return {"$type": type(value).__name__}


if __name__ == "__main__":
    main()
