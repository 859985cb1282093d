"""Piano-roll frames: the codec, benchmark files, masked batches, the frame kind, every family end to end."""
import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from music21 import converter, corpus
from typer.testing import CliRunner

import seqkit
from conftest import tiny_config
from seqkit.cli import app
from seqkit.config import RunConfig
from seqkit.models import FAMILIES, ModelConfig, build_model
from seqkit.generate import generate_steps, seeded_generator
from seqkit.kinds import kind_from_dict, load_corpus
from seqkit.kinds.pianoroll import PianoRollKind as PianoRoll
from seqkit.music.benchmark_file import read_benchmark_file, write_benchmark_file
from seqkit.music.corpus import bach_pieces
from seqkit.music.frame_data import FrameData, RandomSongWindows, export_frames
from seqkit.music.tokenizer import MidiTokenizer

KIND = PianoRoll()


def generate_frames(model, prime, n, temperature=1.0, seed=None, num_samples=1):
    """The generation loop every kind shares, with the frame kind's sampler: prime + n frames per sample."""
    x = KIND.prompt_tensor(prime, num_samples, "cpu")
    draw = KIND.sampler(model, temperature, generator=seeded_generator(model, seed))
    new = torch.stack(list(generate_steps(model, x, n, draw)), 1).to(torch.uint8).numpy()
    return [np.concatenate([prime, sample]) for sample in new]


def evaluate_frames(model, songs, context=None):
    if context is not None:
        model.cfg.context = context  # how many frames are fed at a time; the state carries the rest
    return KIND.evaluate(model, songs)

runner = CliRunner()


@pytest.fixture(scope="module")
def chorale_file(tmp_path_factory):
    """12 Bach chorales at eighth-note frames, split 8/2/2 by piece, as a benchmark .npz."""
    root = tmp_path_factory.mktemp("frames")
    (root / "chorales").mkdir()
    for path in bach_pieces()[:12]:
        shutil.copy(path, root / "chorales" / Path(path).name)
    counts = export_frames(str(root / "chorales"), root / "chorales.npz", cache_dir=str(root / "cache"),
                           val_fraction=0.2)
    assert counts == {"train": 8, "val": 2, "test": 2}
    return root / "chorales.npz"


def frame_model(family: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(family=family, vocab_size=88, frames=True, context=16, window=4, d_embed=16,
                                   d_hidden=32, n_layers=1, n_heads=2))


# --- notes ↔ rolls -------------------------------------------------------------------------------

def merged_spans(notes, frames_per_quarter):
    """Per pitch, the union of the notes' frame intervals, touching ones joined: what a roll can hold."""
    by_pitch = {}
    for n in notes:
        start, end = n.start * frames_per_quarter, (n.start + n.duration) * frames_per_quarter
        by_pitch.setdefault(n.pitch, []).append((start, end))
    spans = set()
    for pitch, intervals in by_pitch.items():
        intervals.sort()
        start, end = intervals[0]
        for a, b in intervals[1:]:
            if a <= end:
                end = max(end, b)
            else:
                spans.add((pitch, start, end))
                start, end = a, b
        spans.add((pitch, start, end))
    return spans


def test_chorale_notes_roll_notes_round_trip(tmp_path):
    notes = MidiTokenizer().notes_from_score(corpus.parse("bach/bwv10.7"))
    roll = PianoRoll(frames_per_quarter=4)
    assert all((n.start * 4).is_integer() and (n.duration * 4).is_integer() for n in notes)  # on the grid
    frames = roll.notes_to_roll(notes)
    assert frames.shape == (max(n.start + n.duration for n in notes) * 4, 88) and frames.dtype == bool
    back = roll.roll_to_notes(frames)
    assert {(n.pitch, n.start * 4, (n.start + n.duration) * 4) for n in back} == merged_spans(notes, 4)
    assert len(back) < len(notes)  # repeated notes of a voice merge: a roll cannot tell them apart
    assert np.array_equal(roll.notes_to_roll(back), frames)
    roll.write_midi(frames, tmp_path / "chorale.mid")
    assert np.array_equal(roll.read_roll(tmp_path / "chorale.mid"), frames)


def test_held_keys_become_one_sustained_note():
    roll = PianoRoll(low=60, high=71, frames_per_quarter=2)
    frames = np.zeros((6, 12), dtype=np.uint8)
    frames[1:5, 0] = 1         # C4 held for four frames
    frames[[0, 2], 4] = 1      # E4 struck twice
    frames[5, 11] = 1          # B4 in the last frame
    notes = roll.roll_to_notes(frames)
    assert [(n.pitch, n.start, n.duration) for n in notes] == [(64, 0.0, 0.5), (60, 0.5, 2.0), (64, 1.0, 0.5),
                                                               (71, 2.5, 0.5)]
    assert np.array_equal(roll.notes_to_roll(notes), frames)


def test_start_sampling_holds_the_notes_sounding_at_each_frame_start():
    notes = MidiTokenizer().notes_from_score(corpus.parse("bach/bwv66.6"))  # 29 notes start off the beat
    frames = PianoRoll(frames_per_quarter=1, sampling="start").notes_to_roll(notes)
    for t, frame in enumerate(frames):
        sounding = {n.pitch - 21 for n in notes if n.start <= t < n.start + n.duration}
        assert set(np.nonzero(frame)[0]) == sounding
    assert frames.sum(1).max() == 4  # four voices
    snapped = PianoRoll(frames_per_quarter=1).notes_to_roll(notes)
    assert snapped.sum() > frames.sum()  # "snap" also keeps the eighths between beats


def roll_settings(roll):
    return roll.low, roll.high, roll.frames_per_quarter, roll.sampling, roll.vocab_size


def test_piano_roll_settings_round_trip_as_json():
    roll = PianoRoll(low=36, high=96, frames_per_quarter=1, sampling="start")
    saved = json.loads(json.dumps(roll.to_dict()))
    assert saved == {"kind": "pianoroll", "format_version": 1, "low": 36, "high": 96, "frames_per_quarter": 1,
                     "sampling": "start"}
    assert roll_settings(kind_from_dict(saved)) == (36, 96, 1, "start", 61)
    assert kind_from_dict(saved) == roll and roll != PianoRoll()
    with pytest.raises(ValueError, match="low <= high"):
        PianoRoll(low=90, high=80)
    with pytest.raises(ValueError, match="snap or start"):
        PianoRoll(sampling="middle")


# --- benchmark files -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".npz", ".mat", ".pickle"])
def test_benchmark_file_written_and_read_back(chorale_file, tmp_path, suffix):
    songs = read_benchmark_file(chorale_file)
    assert [len(songs[s]) for s in ("train", "val", "test")] == [8, 2, 2]
    assert all(song.shape[1] == 88 and song.dtype == np.uint8 and song.any() for s in songs.values() for song in s)
    path = tmp_path / f"copy{suffix}"
    write_benchmark_file(path, songs)
    again = read_benchmark_file(path)
    for split in songs:
        assert len(again[split]) == len(songs[split])
        assert all(np.array_equal(a, b) for a, b in zip(again[split], songs[split]))


def test_augmented_training_songs_are_whole_transpositions(chorale_file):
    from seqkit.config import DataConfig
    from seqkit.music.frame_data import load_frame_corpus

    songs = read_benchmark_file(chorale_file)
    corpus = load_frame_corpus(DataConfig(source=str(chorale_file), tokenizer="pianoroll", augment=True), PianoRoll())
    same = lambda a, b: len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))  # noqa: E731
    assert same(corpus.val, songs["val"]) and same(corpus.test, songs["test"])  # only training songs change
    originals, extra = corpus.train[:8], corpus.train[8:]
    assert same(originals, songs["train"])
    shifts = []
    for song in originals:  # every shift in -5..6 but 0 that keeps the song on the piano, in order
        keys = np.nonzero(song.any(0))[0]
        shifts += [(song, k) for k in range(-5, 7) if k and 0 <= keys[0] + k and keys[-1] + k < 88]
    assert len(extra) == len(shifts) > 8 * 10
    for (song, k), moved in zip(shifts, extra):
        assert moved.sum() == song.sum() and np.array_equal(moved[:, max(k, 0):88 + min(k, 0)],
                                                            song[:, max(-k, 0):88 - max(k, 0)])


def test_jsb_style_pickle_of_pitch_numbers(tmp_path, capsys):
    song = [(60, 64, 67), (60, 64, 67), (), [62, 65, 12]]  # 12 is below the piano: dropped, and counted
    path = tmp_path / "jsb.pickle"
    path.write_bytes(pickle.dumps({"train": [song, song[:2]], "valid": [song], "test": [song[:3]]}, protocol=2))
    songs = read_benchmark_file(path)
    assert [len(songs[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    roll = songs["train"][0]
    assert roll.shape == (4, 88) and roll.sum() == 8
    assert [p + 21 for p in np.nonzero(roll[3])[0]] == [62, 65] and not roll[2].any()
    assert "dropped 2 sounding key-frames" in capsys.readouterr().err


def test_128_key_arrays_are_cut_to_the_piano(tmp_path):
    song = np.zeros((3, 128), dtype=np.float64)
    song[0, 60] = song[1, 10] = song[2, 108] = 1
    path = tmp_path / "wide.npz"
    write_benchmark_file(path, {"train": [song], "val": [song], "test": []})
    songs = read_benchmark_file(path)
    assert songs["test"] == [] and songs["train"][0].sum() == 2 and songs["train"][0][2, 108 - 21] == 1


class RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.mark.parametrize("suffix", [".pickle", ".npz"])
def test_pickle_that_would_run_code_is_refused(tmp_path, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pickle":
        path.write_bytes(pickle.dumps({"traindata": [RunsCode(marker)], "validdata": [], "testdata": []}))
    else:
        evil = np.empty(1, dtype=object)
        evil[0] = RunsCode(marker)
        np.savez(path, traindata=evil, validdata=evil, testdata=evil)
    with pytest.raises(ValueError, match="refused to load.*builtins.exec"):
        read_benchmark_file(path)
    assert not marker.exists()


# --- batches and the loss ------------------------------------------------------------------------

def random_songs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def test_padding_never_counts_in_the_loss():
    model = frame_model("lstm")
    songs = random_songs([5, 12])
    data = FrameData(seqkit.data.Corpus(PianoRoll(), songs, songs), context=16, batch_size=2, seed=0, val_batches=1)
    rolls, mask = next(iter(data.val_dataloader()))  # whole songs, longest first
    assert rolls.shape == (2, 12, 88) and mask.sum(1).tolist() == [12, 5]
    with torch.no_grad():
        padded, count = KIND.loss(model, (rolls, mask))
        rolls[~mask] = 1.0  # whatever the padding holds
        assert torch.allclose(KIND.loss(model, (rolls, mask))[0], padded)
        alone = [(torch.tensor(s[None], dtype=torch.float32), torch.ones(1, len(s), dtype=torch.bool)) for s in songs]
        parts = [KIND.loss(model, batch) for batch in alone]
    by_hand = sum(loss * n for loss, n in parts) / sum(n for _, n in parts)
    assert count == 15 and torch.allclose(padded, by_hand)
    for context in (16, 4):  # whole songs, or in pieces with the state carried: the same numbers
        assert evaluate_frames(model, songs, context)["nll_per_frame"] == pytest.approx(by_hand.item(), rel=1e-5)


def test_validation_scores_each_frame_once_with_the_state_carried_as_eval_does():
    songs = random_songs([5, 12, 33])
    data = FrameData(seqkit.data.Corpus(PianoRoll(), songs, songs), context=8, batch_size=2, seed=0, val_batches=10)
    batches = list(data.val_dataloader())
    assert sum(int(mask[:, 1:].sum()) for _, mask in batches) == sum(len(s) - 1 for s in songs)
    model = frame_model("lstm")
    with torch.no_grad():
        losses = [KIND.loss(model, batch) for batch in batches]  # what validation during training computes
    validation = sum(loss * n for loss, n in losses) / sum(n for _, n in losses)
    assert validation.item() == pytest.approx(evaluate_frames(model, songs)["nll_per_frame"], rel=1e-5)


def test_training_windows_depend_only_on_seed_and_step():
    songs = random_songs([3, 40, 25, 60])
    one = next(iter(RandomSongWindows(songs, 16, 4, seed=7, start_step=5)))
    again = next(iter(RandomSongWindows(songs, 16, 4, seed=7, start_step=5)))
    assert all(torch.equal(a, b) for a, b in zip(one, again))
    ranks = [next(iter(RandomSongWindows(songs, 16, 2, seed=7, start_step=5, rank=r, world_size=2))) for r in (0, 1)]
    assert all(torch.equal(torch.cat([r[i] for r in ranks]), one[i]) for i in (0, 1))
    assert one[0].shape == (4, 17, 88) and one[1].dtype == torch.bool
    rolls, mask = one
    assert not rolls[~mask].any()
    later = next(iter(RandomSongWindows(songs, 16, 4, seed=7, start_step=6)))
    assert not torch.equal(later[0], one[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_nll_at_initialisation_is_about_k_ln2(chorale_file, family):
    nll = evaluate_frames(frame_model(family), read_benchmark_file(chorale_file)["test"], 16)["nll_per_frame"]
    assert abs(nll - 88 * math.log(2)) < 0.05 * 88 * math.log(2), nll


# --- end to end ----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains_and_evaluates_on_frames(chorale_file, tmp_path, family):
    cfg = tiny_config(chorale_file, family=family, out=tmp_path / "run", steps=6, tokenizer="pianoroll",
                      cache_dir=tmp_path / "cache")
    run = seqkit.train(cfg)
    trained = seqkit.load(run)
    assert trained.tokenizer == PianoRoll() and trained.model.cfg.frames
    metrics = trained.evaluate(str(chorale_file), split="test")
    test_frames = sum(len(song) - 1 for song in read_benchmark_file(chorale_file)["test"])
    assert metrics["frames"] == test_frames and math.isfinite(metrics["nll_per_frame"])
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["f1"] <= 1
    assert metrics["nll_per_frame"] < 88 * math.log(2)  # six steps already learn that most keys are off
    assert trained.info["summary"]["best_val_loss"] < 88 * math.log(2)


def test_cli_trains_evaluates_and_generates_frames(chorale_file, tmp_path):
    out = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(chorale_file), "--tokenizer", "pianoroll", "--model", "lstm",
                                  "--out", str(out), "--context", "16", "--max-steps", "4", "--batch-size", "4",
                                  "--accelerator", "cpu", "--set", "train.val_every=2", "--set", "train.val_batches=2",
                                  "--set", "train.progress=false", "--set", f"data.cache_dir={tmp_path / 'cache'}",
                                  "--set", "model.d_hidden=32", "--set", "model.n_layers=1"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["eval", str(out), str(chorale_file), "--split", "test"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "nll_per_frame" in evaluated.stdout and "f1" in evaluated.stdout
    midi = tmp_path / "x.mid"
    generated = runner.invoke(app, ["generate", str(out), "--out", str(midi), "--max-new-tokens", "16", "--seed", "0"])
    assert generated.exit_code == 0, generated.output
    assert midi.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    converter.parse(midi)  # music21 reads it
    assert len(PianoRoll().read_roll(midi)) <= 17  # the silent starting frame and 16 new ones
    refused = runner.invoke(app, ["generate", str(out), "--out", str(midi), "--top-k", "3"])
    assert refused.exit_code == 1 and "top-k" in refused.output


def test_a_run_at_one_frame_per_quarter_reloads_evaluates_and_plays_at_that_rate(chorale_file, tmp_path):
    from symusic import Score

    cfg = tiny_config(chorale_file.parent / "chorales", out=tmp_path / "run", steps=4, tokenizer="pianoroll",
                      cache_dir=chorale_file.parent / "cache")
    cfg.data.frames_per_quarter, cfg.data.frame_sampling = 1, "start"
    trained = seqkit.load(seqkit.train(cfg))
    assert roll_settings(trained.tokenizer) == (21, 108, 1, "start", 88)
    test_songs = load_corpus(cfg.data).test  # framed as training framed them
    assert trained.evaluate(cfg.data.source, split="test")["frames"] == sum(len(song) - 1 for song in test_songs)
    [frames] = trained.generate_ids(None, max_new_tokens=12, temperature=1.5, seed=0)
    frames = np.asarray(frames, dtype=np.uint8)
    quarters = np.nonzero(frames.any(1))[0].max() + 1  # a frame is a quarter note at this rate
    path = trained.tokenizer.write_sample(frames, tmp_path / "sample")
    score = Score(str(path), ttype="second")
    bpm = score.tempos[0].qpm if len(score.tempos) else 120.0
    assert quarters >= 6 and score.end() == pytest.approx(quarters * 60 / bpm, abs=1e-3)


def test_a_run_saved_without_roll_settings_takes_them_from_its_config(tmp_path):
    run = tmp_path / "roll"
    shutil.copytree(Path(__file__).parent / "data" / "runs-v0" / "roll", run)
    (run / "tokenizer.json").write_text(json.dumps({"kind": "pianoroll", "format_version": 1}))  # as saved before
    info = json.loads((run / "run.json").read_text())
    info["config"]["data"].update(frames_per_quarter=1, frame_sampling="start")
    (run / "run.json").write_text(json.dumps(info))
    config = RunConfig.from_dict(json.loads((run / "run.json").read_text())["config"]).data
    saved = json.loads((run / "tokenizer.json").read_text())
    assert roll_settings(kind_from_dict(saved, config)) == (21, 108, 1, "start", 88)
    saved = PianoRoll(low=36, high=96, frames_per_quarter=4).to_dict()  # settings saved win over the config
    assert roll_settings(kind_from_dict(saved, config)) == (36, 96, 4, "snap", 61)


def test_generated_frames_continue_the_prime(chorale_file):
    model = frame_model("transformer")
    prime = read_benchmark_file(chorale_file)["test"][0][:20]
    samples = generate_frames(model, prime, 24, temperature=1.0, seed=3, num_samples=2)
    assert len(samples) == 2 and all(s.shape == (44, 88) and np.array_equal(s[:20], prime) for s in samples)
    assert np.array_equal(samples[0], generate_frames(model, prime, 24, seed=3, num_samples=2)[0])
    lstm = frame_model("lstm")
    greedy = generate_frames(lstm, prime, 6, temperature=0)[0]  # one frame at a time, the state carried
    with torch.no_grad():
        logits, _ = lstm(torch.tensor(greedy[None, :-1], dtype=torch.float32))  # the whole sequence at once
    assert np.array_equal(greedy[20:], (logits[0, 19:] > 0).numpy())
