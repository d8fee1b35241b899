"""The assignment notebook, executed top to bottom on a reduced data size."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.fakecifar import make_arrays, write_python_folder

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "two_layer_nn.ipynb"


def test_notebook_runs(tmp_path, monkeypatch):
    write_python_folder(tmp_path / "data" / "cifar-10-batches-py", make_arrays(per_batch=200))
    monkeypatch.setenv("NNDL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NNDL_NOTEBOOK_SMALL", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "Final training loss:  0.01449786458776" in outputs
    assert "Test accuracy: " in outputs
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 4
