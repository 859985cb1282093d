"""seqkit.music.audio: the built-in synthesizer's pitch, timing and tempo map, WAV format, bad input; the
SoundFont path (FluidSynth) where a General MIDI SoundFont and FluidSynth are installed."""
import shutil
import wave

import numpy as np
import pytest

from seqkit.music.audio import (BUILT_IN, ENV_VAR, MAX_TAIL, PEAK, RELEASE, find_soundfont, render_audio,
                                render_wav, to_seconds)
from seqkit.music.midi_file import midi_bytes
from seqkit.music.notes import Note, NoteList

RATE = 22050
A4, C4, G4 = 440.0, 261.63, 392.0


def installed_soundfont():
    try:
        return find_soundfont() if shutil.which("fluidsynth") else None
    except ValueError:  # $SEQKIT_SOUNDFONT names a bad file: the tests below say so themselves
        return None


SOUNDFONT = installed_soundfont()
needs_soundfont = pytest.mark.skipif(SOUNDFONT is None, reason="needs a General MIDI SoundFont and FluidSynth "
                                     "(apt-get install fluid-soundfont-gm fluidsynth)")


def peak_frequencies(samples, rate, count):
    """The `count` strongest spectral peaks (Hz), strongest first; Hann window, 8x zero padding."""
    x = samples.astype(float) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x, 8 * len(x)))
    frequencies = np.fft.rfftfreq(8 * len(x), 1 / rate)
    local_max = np.flatnonzero((spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:])) + 1
    return frequencies[local_max[np.argsort(-spectrum[local_max])][:count]]


def read_wav(path):
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getcomptype()) == (1, 2, "NONE")  # 16-bit PCM mono
        return np.frombuffer(f.readframes(f.getnframes()), "<i2"), f.getframerate()


def assert_one_line_error(call, *match):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in match), message


# --- the built-in synthesizer --------------------------------------------------------------------

def test_a4_sounds_at_440_hz():
    samples, rate = render_audio(NoteList([Note(69, 0, 2, velocity=90)]), soundfont=None)
    assert samples.dtype == np.int16 and rate == RATE
    assert abs(peak_frequencies(samples, rate, 1)[0] - A4) <= 2


def test_silence_before_the_onset_and_after_the_release():
    # no tempo: 120 bpm, so the A4 sounds from 1.0 s to 1.5 s, then fades for RELEASE; a C4 at 3.0 s ends the piece
    samples, rate = render_audio([Note(69, 2, 1), Note(60, 6, 1)], soundfont=None)
    onset, off, next_onset = round(1.0 * rate), round((1.5 + RELEASE) * rate), round(3.0 * rate)
    assert not samples[:onset].any()
    assert np.abs(samples[onset:onset + rate // 4]).max() > 10_000
    assert np.abs(samples[round(1.5 * rate):off]).max() > 0  # the release is heard
    assert not samples[off + 1:next_onset].any()
    assert len(samples) == pytest.approx((3.5 + RELEASE) * rate, abs=2)


def test_two_notes_together_show_both_fundamentals():
    samples, rate = render_audio([Note(60, 0, 2), Note(67, 0, 2)], soundfont=None)
    found = sorted(peak_frequencies(samples, rate, 2))
    assert found == pytest.approx([C4, G4], abs=2)


def test_louder_velocity_is_louder_and_the_mix_never_clips():
    samples, _ = render_audio([Note(69, 0, 1, velocity=100), Note(69, 4, 1, velocity=50)], soundfont=None)
    first, second = np.abs(samples[:RATE // 2]).max(), np.abs(samples[2 * RATE:2 * RATE + RATE // 2]).max()
    assert first / second == pytest.approx(2.0, rel=0.02)
    chord, _ = render_audio([Note(p, 0, 1, velocity=127) for p in range(48, 84, 3)], soundfont=None)
    assert np.abs(chord.astype(int)).max() == round(PEAK * 32767)


def test_tempo_map_matches_symusic():
    import symusic  # an independent reading of the same MIDI file

    notes = NoteList([Note(60, 0, 1.5), Note(64, 1.5, 3), Note(67, 5, 0.25), Note(72, 7.75, 2)],
                     tempos=[(0, 100), (2, 150), (4.5, 72.5), (8, 200)])
    score = symusic.Score.from_midi(midi_bytes(notes, 480)).to("second")
    theirs = sorted((n.time, n.time + n.duration) for track in score.tracks for n in track.notes)
    starts = to_seconds([n.start for n in notes], notes.tempos)
    ends = to_seconds([n.start + n.duration for n in notes], notes.tempos)
    assert np.allclose(np.array(theirs), np.stack([starts, ends], axis=1), atol=1e-3)
    assert to_seconds([0, 2, 3]).tolist() == [0.0, 1.0, 1.5]  # no tempo: 120 bpm
    assert to_seconds([0, 2, 4, 5], [(0, 120), (2, 240), (4, 60)]).tolist() == [0.0, 1.0, 1.5, 2.5]
    assert to_seconds([1, 3], [(2, 60)]).tolist() == [0.5, 2.0]  # 120 bpm until the first tempo
    assert to_seconds([4], [(0, 120), (0, 60)]).tolist() == [4.0]  # at one time the last tempo wins


def test_wav_from_a_midi_file_lasts_its_end_time_with_a_tempo_change_plus_the_release(tmp_path):
    # 120 bpm for two quarters (1.0 s), then 240 bpm: the last note ends at quarter 6 = 1.0 + 4 * 0.25 = 2.0 s
    notes = NoteList([Note(60, 0, 1), Note(64, 1, 3), Note(67, 4, 2)], tempos=[(0, 120), (2, 240)])
    midi_path, wav_path = tmp_path / "piece.mid", tmp_path / "piece.wav"
    midi_path.write_bytes(midi_bytes(notes, ticks_per_quarter=480))
    assert render_wav(midi_path, wav_path, soundfont=None) == BUILT_IN
    samples, rate = read_wav(wav_path)
    assert rate == RATE
    assert len(samples) / rate == pytest.approx(2.0 + RELEASE, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["piece.mid", "piece.wav"]  # no temporary file left


def test_render_wav_and_render_audio_agree(tmp_path):
    notes = [Note(62, 0.5, 1.5, velocity=80), Note(69, 1, 1)]
    render_wav(notes, tmp_path / "x.wav", soundfont="builtin", sample_rate=16000)
    samples, rate = read_wav(tmp_path / "x.wav")
    expected, expected_rate = render_audio(notes, soundfont=None, sample_rate=16000)
    assert rate == expected_rate == 16000 and np.array_equal(samples, expected)


# --- bad input: one-line ValueError, nothing written ---------------------------------------------

@pytest.mark.parametrize("notes", [[], NoteList([], tempos=[(0, 90)])])
def test_empty_note_list(tmp_path, notes):
    assert_one_line_error(lambda: render_wav(notes, tmp_path / "x.wav"), "no notes")
    assert list(tmp_path.iterdir()) == []


def test_bad_notes_midi_files_and_sample_rates(tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"MThd not really a MIDI file")
    (tmp_path / "empty.mid").write_bytes(midi_bytes(NoteList([], tempos=[(0, 100)]), 480))
    for call, words in [(lambda: render_wav(tmp_path / "missing.mid", tmp_path / "x.wav"), ["no MIDI file"]),
                        (lambda: render_wav(tmp_path / "broken.mid", tmp_path / "x.wav"), ["not a readable"]),
                        (lambda: render_wav(tmp_path / "empty.mid", tmp_path / "x.wav"), ["no notes"]),
                        (lambda: render_wav([Note(200, 0, 1)], tmp_path / "x.wav"), ["pitch"]),
                        (lambda: render_wav([Note(60, -1, 1)], tmp_path / "x.wav"), ["start"]),
                        (lambda: render_wav(NoteList([Note(60, 0, 1)], tempos=[(0, 0)]), tmp_path / "x.wav"),
                         ["tempos"]),
                        (lambda: render_audio([Note(60, 0, 1)], sample_rate=1000), ["sample_rate"])]:
        assert_one_line_error(call, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mid", "empty.mid"]


def test_soundfont_missing_or_not_a_soundfont(tmp_path):
    notes, out = [Note(60, 0, 1)], tmp_path / "x.wav"
    (tmp_path / "text.sf2").write_text("not a soundfont")
    with wave.open(str(tmp_path / "sound.wav"), "wb") as f:  # RIFF, but WAVE rather than sfbk
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(8000), f.writeframes(b"\0\0" * 100)
    assert_one_line_error(lambda: render_wav(notes, out, soundfont=tmp_path / "gone.sf2"), "does not exist")
    for name in ("text.sf2", "sound.wav"):
        assert_one_line_error(lambda: render_wav(notes, out, soundfont=tmp_path / name), "not a SoundFont")
    assert not out.exists()


def test_soundfont_from_the_environment_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.sf2"))
    assert_one_line_error(lambda: render_wav([Note(60, 0, 1)], tmp_path / "x.wav"), f"${ENV_VAR}", "does not exist")
    assert render_wav([Note(60, 0, 1)], tmp_path / "x.wav", soundfont=None) == BUILT_IN  # explicit wins


def test_without_fluidsynth_a_soundfont_is_refused_and_auto_falls_back(tmp_path, monkeypatch):
    (tmp_path / "header_only.sf2").write_bytes(b"RIFF\x04\0\0\0sfbk")
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth program on it
    notes = [Note(60, 0, 1)]
    assert_one_line_error(lambda: render_wav(notes, tmp_path / "x.wav", soundfont=tmp_path / "header_only.sf2"),
                          "FluidSynth", "apt-get install fluidsynth")
    assert not (tmp_path / "x.wav").exists()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert render_wav(notes, tmp_path / "x.wav") == BUILT_IN


# --- the SoundFont path ----------------------------------------------------------------------------

@needs_soundfont
def test_soundfont_renders_a4_in_tune_from_a_midi_file(tmp_path):
    notes = NoteList([Note(69, 2, 2, velocity=100)], tempos=[(0, 120), (1, 60)])  # sounds from 1.5 s to 3.5 s
    (tmp_path / "a4.mid").write_bytes(midi_bytes(notes, 480))
    name = render_wav(tmp_path / "a4.mid", tmp_path / "a4.wav", soundfont=SOUNDFONT)
    assert name == f"{SOUNDFONT.resolve().name} via FluidSynth"
    samples, rate = read_wav(tmp_path / "a4.wav")
    assert 3.5 + RELEASE - 0.05 <= len(samples) / rate <= 3.5 + MAX_TAIL + 0.05
    assert np.abs(samples[:round(1.5 * rate) - 1]).max() < 100
    assert abs(peak_frequencies(samples[round(1.6 * rate):round(2.6 * rate)], rate, 1)[0] - A4) <= 2


@needs_soundfont
def test_soundfont_is_used_by_default_and_a_broken_one_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert render_wav([Note(60, 0, 1)], tmp_path / "x.wav").endswith("via FluidSynth")
    (tmp_path / "header_only.sf2").write_bytes(b"RIFF\x04\0\0\0sfbk")
    assert_one_line_error(lambda: render_wav([Note(60, 0, 1)], tmp_path / "y.wav",
                                             soundfont=tmp_path / "header_only.sf2"), "FluidSynth could not play")
    assert not (tmp_path / "y.wav").exists()
