"""Music through the whole tool: train on MIDI files, continue a song, tokenize, the song-prediction demo."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from music21 import converter
from typer.testing import CliRunner

from seqkit.cli import app
from seqkit.music.notes import NoteList
from seqkit.music.tokenizer import MidiTokenizer

runner = CliRunner()
TINY = ["--context", "32", "--max-steps", "4", "--batch-size", "4", "--accelerator", "cpu",
        "--set", "model.d_embed=16", "--set", "model.d_hidden=32", "--set", "model.n_layers=1",
        "--set", "train.val_every=2", "--set", "train.val_batches=2", "--set", "train.progress=false"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_on_midi_folder_skips_bad_file_and_continues_a_song(songs, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", songs / "chorales", "--model", "transformer", "--out", run,
                    "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY)
    assert result.exit_code == 0, result.output
    assert "broken.mid" in result.output and "skipped 1 of 9" in result.output
    prompt = sorted((songs / "chorales").glob("bwv*.mid"))[0]
    out = tmp_path / "continued.mid"
    result = invoke("generate", run, "--prompt-file", prompt, "--bars", "2", "--out", out,
                    "--max-new-tokens", "40", "--num-samples", "2", "--seed", "0")
    assert result.exit_code == 0, result.output
    for i in (1, 2):
        midi, png = tmp_path / f"continued_{i}.mid", tmp_path / f"continued_{i}.png"
        assert png.stat().st_size > 1000
        written = converter.parse(midi)  # a real MIDI file music21 reads
        assert len(written.flatten().notes) > 0
    assert invoke("eval", run, songs / "chorales").exit_code == 0


@pytest.mark.parametrize("normalize_key", [False, True])
def test_generated_music_keeps_the_prompt(songs, tmp_path, normalize_key):
    run = tmp_path / "run"
    assert invoke("train", songs / "chorales", "--model", "lstm", "--out", run, "--set", f"data.normalize_key={normalize_key}",
                  "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY).exit_code == 0
    prompt = sorted((songs / "chorales").glob("bwv*.mid"))[0]
    if normalize_key:  # the model plays in C major / A minor; the file comes back in the prompt's key
        assert MidiTokenizer(normalize_key=True).key_shift_of_file(prompt) != 0
    out = tmp_path / "x.mid"
    assert invoke("generate", run, "--prompt-file", prompt, "--bars", "2", "--out", out, "--max-new-tokens", "30",
                  "--min-new-tokens", "30", "--num-samples", "4", "--seed", "0").exit_code == 0
    tok = MidiTokenizer()
    original = [n for n in tok.read_notes(prompt) if n.start < 8]
    for i in range(1, 5):
        written = tok.read_notes(tmp_path / f"x_{i}.mid")
        for note in original:  # the first two bars come back exactly (continuations start after them)
            assert note in written


def test_a_short_prompt_is_moved_into_key_by_its_own_bars(songs, tmp_path):
    run = tmp_path / "run"
    assert invoke("train", songs / "chorales", "--model", "lstm", "--out", run, "--set", "data.normalize_key=true",
                  "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY).exit_code == 0
    tok, keyed = MidiTokenizer(), MidiTokenizer(normalize_key=True)
    prompt = sorted((songs / "chorales").glob("bwv*.mid"))[0]
    notes = tok.read_notes(prompt)
    other = tmp_path / "other.mid"  # the same two bars, then the rest a tritone higher
    tok.write_midi(NoteList([n._replace(pitch=n.pitch + 6) if n.start >= 8 else n for n in notes],
                            notes.time_signatures, notes.tempos), other)
    assert keyed.key_shift_of_file(prompt) != keyed.key_shift_of_file(other)  # four bars read: bars 3-4 count
    for name, song in (("a", prompt), ("b", other)):
        assert invoke("generate", run, "--prompt-file", song, "--bars", "2", "--out", tmp_path / f"{name}.mid",
                      "--max-new-tokens", "30", "--min-new-tokens", "30", "--seed", "0").exit_code == 0
    assert tok.read_notes(tmp_path / "a.mid") == tok.read_notes(tmp_path / "b.mid")


def test_tokenize_midi_round_trip(songs, tmp_path):
    song = sorted((songs / "chorales").glob("bwv*.mid"))[0]
    back = tmp_path / "back.mid"
    result = invoke("tokenize", song, "--roundtrip", back)
    assert result.exit_code == 0 and "tokens (midi" in result.output and "BOS Bar" in result.output
    tok = MidiTokenizer()
    assert tok.read_notes(back) == tok.read_notes(song)


def test_eval_refuses_data_of_the_other_kind(songs, trained_run, text_file, tmp_path):
    result = invoke("eval", trained_run, songs / "chorales")
    assert result.exit_code == 1 and "is music, but the tokenizer is char (text)" in result.stderr
    run = tmp_path / "run"
    assert invoke("train", songs / "chorales", "--model", "ar", "--out", run,
                  "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY).exit_code == 0
    result = invoke("eval", run, text_file)
    assert result.exit_code == 1 and "is not music" in result.stderr


def test_midi_with_no_notes_is_one_line_error(songs):
    result = invoke("tokenize", songs / "silence.mid")
    assert result.exit_code == 1 and "no notes" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_predict_song_demo_scores_and_writes_files(songs, tmp_path):
    from seqkit.music.demo import predict_song

    lines = []
    result = predict_song("lstm", steps=4, bars=2, examples=1, out=tmp_path, data=str(songs / "chorales"),
                          echo=lines.append, **{"model.d_hidden": 32, "model.context": 32, "train.progress": False,
                                                "data.cache_dir": str(tmp_path / "cache")})
    scores = result["scores"]
    assert set(scores) == {"model", "unigram", "repeat last note"}
    for name in ("model", "unigram"):
        assert 0 < scores[name]["nll_per_token"] < 10
    for s in scores.values():
        assert 0 <= s["top1_pitch"] <= s["top5_pitch"] <= 1
    assert len(result["files"]) == 3 and all(__import__("os").path.getsize(f) > 0 for f in result["files"])
    assert any("repeat last note" in line for line in lines)
    music = result["music"]  # the continuation statistics of every held-out song, printed as a table
    assert list(music) == ["model", "Bach", "other Bach", "prompt"]
    assert 0 <= music["model"]["pc_distance"] <= 1 and music["Bach"]["notes_per_quarter"] > 0
    assert any(line.strip().startswith("Continuations of ") for line in lines)
    assert any("pc dist" in line and "notes/qn" in line for line in lines)
    again = []
    predict_song("lstm", bars=2, examples=0, pieces=1, out=tmp_path, data=str(songs / "chorales"), echo=again.append)
    assert "reusing" in again[0] and any(line.strip().startswith("Continuations of 1 held-out") for line in again)
    with pytest.raises(ValueError, match="expected a number or 'all', got 'some'"):
        predict_song("lstm", bars=2, examples="some", out=tmp_path, data=str(songs / "chorales"), echo=again.append)


TINY_DEMO = {"model.d_hidden": 32, "model.context": 32, "train.progress": False}


def test_predict_song_with_no_bars_is_a_one_line_error_before_training(songs, tmp_path):
    from seqkit.music.demo import predict_song

    with pytest.raises(ValueError, match="bars must be at least 1, got 0") as error:
        predict_song("lstm", steps=2, bars=0, examples=0, pieces=1, out=tmp_path / "demo", data=str(songs / "chorales"),
                     echo=lambda *_: None, **TINY_DEMO, **{"data.cache_dir": str(tmp_path / "cache")})
    assert "\n" not in str(error.value) and not (tmp_path / "demo").exists()  # nothing trained


def test_predict_song_moves_a_held_out_song_into_key_by_its_prompt_bars(songs, tmp_path):
    """A two-bar prompt decides the transposition: changing bars 3 on of the held-out song (a tritone up)
    leaves its prompt, and so the model's continuation written back in the song's key, as it was."""
    from seqkit.music.demo import keyed_by_prompt, predict_song

    folder = tmp_path / "songs"
    shutil.copytree(songs / "chorales", folder)
    settings = {**TINY_DEMO, "data.cache_dir": str(tmp_path / "cache")}
    run = lambda: predict_song("lstm", steps=2, bars=2, examples=1, pieces=1, out=tmp_path / "demo",  # noqa: E731
                               data=str(folder), echo=lambda *_: None, **settings)["files"][0]
    prediction = Path(run())
    written = prediction.read_bytes()
    song = folder / prediction.name.replace("-prediction", "")
    tok, keyed = MidiTokenizer(), MidiTokenizer(normalize_key=True)
    notes = tok.read_notes(song)
    before = keyed.key_shift_of_file(song)
    tok.write_midi(NoteList([n._replace(pitch=n.pitch + 6) if n.start >= 8 else n for n in notes],
                            notes.time_signatures, notes.tempos), song)
    assert keyed.key_shift_of_file(song) != before  # four bars read: bars 3-4 would move the prompt
    assert run() == str(prediction) and prediction.read_bytes() == written
    pieces = {str(song): np.array(keyed.encode_file(song))}
    assert keyed_by_prompt(keyed, pieces, 4) == (pieces, keyed.key_shift_of_file)  # four bars: the split's own ids
