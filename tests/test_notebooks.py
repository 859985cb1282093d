"""Execute every notebook in notebooks/ on a tiny budget, in a scratch directory, with this interpreter."""
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "seqkit-test"
# What each notebook must show beyond running cleanly: strings in its text output, or output mime types.
EXPECTED = {
    "hello_rnn.ipynb": ["step-by-step equals one call: True", "hidden state", "fed back:", "--- jordan ---",
                        "image/png"],
    "lstm_train.ipynb": ["best validation loss", "--- temperature 0.2 ---", "--- temperature 1.3 ---", "image/png"],
    "predict_song.ipynb": ["top-1 pitch", "image/png", "text/html", "prediction", "truth"],  # html: audio players
}


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    """A kernel spec running ipykernel with this very interpreter, so a fresh venv needs no install step."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "seqkit tests", "language": "python"}))
    return root


def cell_outputs(nb) -> tuple[str, set[str]]:
    """All text a notebook printed or displayed, and the mime types of its rich outputs."""
    texts, mimes = [], set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                mimes.update(out.data)
                texts.append(out.data.get("text/plain", ""))
    return "\n".join(texts), mimes


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch, jupyter_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    home = tmp_path / "home"
    home.mkdir()
    env = {"JUPYTER_PATH": str(jupyter_path), "HOME": str(home), "MPLBACKEND": "Agg", "SEQKIT_NOTEBOOK_STEPS": "20",
           "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "a code cell did not run"
    assert not [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    text, mimes = cell_outputs(nb)
    for expected in EXPECTED.get(path.name, []):
        assert expected in mimes if "/" in expected else expected in text, f"{path.name}: no {expected!r} in the output"
