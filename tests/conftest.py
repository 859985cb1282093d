import os
import sys
import warnings

import pytest

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness.\n") * 40


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


def tiny_config(source, family="lstm", out="", steps=6, tokenizer="char", cache_dir=None):
    from seqkit.presets import preset

    cache = str(cache_dir) if cache_dir else os.path.join(os.path.dirname(str(source)), "cache")
    return preset("tiny", family, source=str(source), tokenizer=tokenizer, cache_dir=cache, max_steps=steps,
                  out=str(out))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny LSTM run on a small text, shared by tests that only read it."""
    import seqkit

    root = tmp_path_factory.mktemp("run")
    (root / "corpus.txt").write_text(TEXT)
    return seqkit.train(tiny_config(root / "corpus.txt", out=root / "run", steps=20))


@pytest.fixture(scope="session")
def songs(tmp_path_factory):
    """Eight real chorales as MIDI files, one corrupt file and one file with no notes."""
    from seqkit.music.corpus import bach_pieces
    from seqkit.music.tokenizer import MidiTokenizer

    folder = tmp_path_factory.mktemp("songs")
    tokenizer = MidiTokenizer()
    for path in bach_pieces()[:8]:
        name = path.rsplit("/", 1)[-1].split(".")[0] + ".mid"
        tokenizer.write_midi(tokenizer.read_notes(path), folder / "chorales" / name)
    (folder / "chorales" / "broken.mid").write_bytes(b"MThd this is not a midi file")
    tokenizer.write_midi([], folder / "silence.mid")
    return folder


sys.path.insert(0, os.path.dirname(__file__))
