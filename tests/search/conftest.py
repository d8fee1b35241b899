import os
import subprocess
import sys
import time

import pytest

from tests.fakecifar import make_arrays, write_python_folder
from tests.signalling import default_stop_handlers


@pytest.fixture(scope="module")
def search_env(tmp_path_factory):
    """A small CIFAR-format data set and a private cache, as environment variables."""
    root = tmp_path_factory.mktemp("data")
    write_python_folder(root / "cifar-10-batches-py", make_arrays(per_batch=200))
    return {**os.environ, "NNDL_DATA": str(root),
            "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")), "MPLBACKEND": "Agg",
            "NNDL_HEARTBEAT_INTERVAL": "1", "NNDL_GRACE_PERIOD": "3"}


SMALL = ["--num-training", "800", "--num-validation", "200", "--num-test", "100",
         "--batch-size", "100"]


def nndl(*args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "nndl", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kwargs)


def start_nndl(*args, env):
    return subprocess.Popen([sys.executable, "-m", "nndl", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=default_stop_handlers if os.name == "posix" else None)


def wait_for(predicate, timeout=120, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def postgres_url():
    url = os.environ.get("NNDL_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI=true but NNDL_TEST_POSTGRES_URL is not set (.ci/services)")
        pytest.skip("no PostgreSQL server: source .ci/services to start one")
    return url


def small_disk_command(folder, size):
    """A command prefix that runs its command with a ``size`` tmpfs (e.g. ``"200k"``)
    mounted on ``folder``, in a mount namespace of its own (the disk vanishes with it);
    skips the test where this machine cannot make one (no ``unshare``, no namespaces)."""
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's unshare to mount a small disk")
    prefix = [unshare, "--mount"] + ([] if os.geteuid() == 0 else
                                     ["--user", "--map-root-user"])
    probe = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                            str(folder)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small disk here: {probe.stderr.strip()}")
    return [*prefix, "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "{folder}" && exec "$@"',
            "sh"]
