"""Hearing the music: WAVs beside generated MIDI (CLI and demo), and audio in W&B runs of music."""
import wave

import pytest

import seqkit
from conftest import tiny_config
from seqkit.music.audio import to_seconds
from seqkit.music.midi_file import read_midi
from seqkit.music.tokenizer import MidiTokenizer
from test_music_cli import TINY, invoke


def wav_seconds(path) -> float:
    with wave.open(str(path)) as f:
        assert f.getsampwidth() == 2 and f.getnchannels() == 1  # 16-bit PCM, mono
        return f.getnframes() / f.getframerate()


def midi_seconds(path) -> float:
    notes = read_midi(path.read_bytes())
    return float(to_seconds([max(n.start + n.duration for n in notes)], notes.tempos)[0])


@pytest.fixture(scope="module")
def music_run(songs, tmp_path_factory):
    run = tmp_path_factory.mktemp("listen") / "run"
    result = invoke("train", songs / "chorales", "--model", "lstm", "--out", run,
                    "--set", f"data.cache_dir={run.parent / 'cache'}", *TINY)
    assert result.exit_code == 0, result.output
    return run


def test_generate_with_audio_writes_a_wav_as_long_as_its_midi(music_run, songs, tmp_path):
    prompt = sorted((songs / "chorales").glob("bwv*.mid"))[0]
    out = tmp_path / "x.mid"
    result = invoke("generate", music_run, "--prompt-file", prompt, "--bars", "2", "--out", out,
                    "--max-new-tokens", "30", "--seed", "0", "--audio")
    assert result.exit_code == 0, result.output
    assert f"{out.with_suffix('.wav')} (" in result.stdout and "synthesizer" in result.stdout or "FluidSynth" in result.stdout
    tail = wav_seconds(out.with_suffix(".wav")) - midi_seconds(out)
    assert 0.25 <= tail <= 3.05  # the release (built-in: 0.3 s), or a SoundFont's ringing


def test_audio_refuses_text_runs_and_bad_soundfonts(music_run, trained_run, tmp_path):
    result = invoke("generate", trained_run, "--audio", "--max-new-tokens", "5")
    assert result.exit_code == 1 and "--audio is for music models" in result.stderr
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    result = invoke("generate", music_run, "--audio", "--soundfont", fake, "--out", tmp_path / "y.mid")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "y.mid").exists() and not (tmp_path / "y.wav").exists()


def test_demo_with_audio_writes_a_wav_per_midi(songs, tmp_path):
    from seqkit.music.demo import predict_song

    lines = []
    result = predict_song("lstm", steps=4, bars=2, examples=1, out=tmp_path, data=str(songs / "chorales"),
                          echo=lines.append, audio=True,
                          **{"model.d_hidden": 32, "model.context": 32, "train.progress": False,
                             "data.cache_dir": str(tmp_path / "cache")})
    midis = [f for f in result["files"] if f.endswith(".mid")]
    wavs = [f for f in result["files"] if f.endswith(".wav")]
    assert len(midis) == 2 and [w.removesuffix(".wav") for w in wavs] == [m.removesuffix(".mid") for m in midis]
    assert all(wav_seconds(w) > 1 for w in wavs) and any("audio played by the" in line for line in lines)


def test_a_music_run_logs_audio_and_piano_rolls_to_wandb(songs, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = tiny_config(songs / "chorales", out=tmp_path / "run", steps=60, tokenizer="midi", cache_dir=tmp_path / "c")
    cfg.train.wandb, cfg.train.val_every, cfg.train.lr = True, 30, 1e-2  # long enough to write whole notes
    run = seqkit.train(cfg)
    samples = sorted((run / "samples").glob("*.wav"))
    assert samples and all(wav_seconds(w) > 0 for w in samples)
    logged = list((run / "wandb").glob("offline-run-*/files/media/audio/**/*.wav"))
    images = list((run / "wandb").glob("offline-run-*/files/media/images/**/*.png"))
    assert logged and images
    assert MidiTokenizer().read_notes(samples[0].with_suffix(".mid"))
