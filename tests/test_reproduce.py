import json

import pytest

from nndl.reproduce import ReproducePlan, reproduce
from tests.fakecifar import make_arrays, write_python_folder


@pytest.mark.slow
def test_ctrl_c_leaves_a_marked_usable_partial_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_python_folder(tmp_path / "data" / "cifar-10-batches-py", make_arrays(per_batch=200))
    import nndl.reproduce as module

    def interrupt(*args, **kwargs):  # Ctrl-C during the search step
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run_search", interrupt)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        reproduce(ReproducePlan.quick(data=str(tmp_path / "data")), out=out, progress=False,
                  log=lambda *_: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and (out / "INCOMPLETE").is_file()
    assert "default" in metrics["networks"] and (out / "default" / "model.npz").is_file()
    html = (out / "report.html").read_text()
    assert "This run is interrupted" in html and 'id="default"' in html
    assert 'id="test"' not in html
