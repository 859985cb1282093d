"""Listen to note lists: 16-bit mono WAV from a small built-in additive synthesizer, or from a General MIDI
SoundFont (.sf2/.sf3) when one is given or installed.

`render_wav(notes or MIDI path, wav_path)` writes the file and says which synthesizer played it;
`render_audio(notes)` returns (int16 samples, sample rate), e.g. for `IPython.display.Audio`.

SoundFonts play through the FluidSynth program (`apt-get install fluidsynth`), the reference SoundFont player.
Not symusic's Synthesizer: in symusic 0.6.0 its `render` cannot hand audio to Python (the bindings lost their
Eigen type caster: every call raises TypeError), and 0.5.x plays FluidR3_GM out of tune (a flute's A4 at
232 Hz, a piano's at 784 Hz). Nothing is ever downloaded (symusic's Synthesizer without a path would).
"""
from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from seqkit.io import atomic_path
from seqkit.music.midi_file import midi_bytes, read_midi
from seqkit.music.notes import NoteList

BUILT_IN = "built-in additive synthesizer"
AUTO = "auto"  # a SoundFont from $SEQKIT_SOUNDFONT or a system location if there is one, else built-in
ENV_VAR = "SEQKIT_SOUNDFONT"
SYSTEM_SOUNDFONTS = [  # Debian/Ubuntu fluid-soundfont-gm, Arch soundfont-fluid, Fedora fluid-soundfont-gm
    "/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/FluidR3_GM.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/sounds/sf3/default-GM.sf3"]
SOUNDFONT_DIRS = ["/usr/share/soundfonts", "/usr/share/sounds/sf2", "/usr/share/sounds/sf3",
                  "/usr/local/share/soundfonts"]
DEFAULT_BPM = 120.0
ATTACK, RELEASE = 0.01, 0.3           # seconds; the built-in synthesizer's file ends RELEASE after the last note
DECAY, SUSTAIN = 0.4, 0.5             # a held note fades from full level towards SUSTAIN over ~DECAY seconds
HARMONICS = (1.0, 0.5, 0.25, 0.12)    # amplitudes of the fundamental and its overtones: a soft, organ-like tone
MAX_TAIL = 3.0                        # seconds of a SoundFont's ringing (release, reverb) kept after the last note
PEAK = 0.89                           # normalise to -1 dBFS: loud, never clipping


def render_wav(notes_or_midi, wav_path, soundfont=AUTO, sample_rate: int = 22050) -> str:
    """Write notes (a NoteList, a list of Notes, or the path of a MIDI file) as a 16-bit mono WAV file.

    soundfont: "auto" (a SoundFont named by $SEQKIT_SOUNDFONT or found in a system location, else the built-in
    synthesizer), None or "builtin" (always the built-in synthesizer), or the path of a .sf2/.sf3 file.
    Returns the synthesizer used, e.g. "built-in additive synthesizer" or "FluidR3_GM.sf2 via FluidSynth".
    Nothing is written when the input is bad (ValueError)."""
    samples, sample_rate, name = _render(notes_or_midi, soundfont, sample_rate)
    with atomic_path(wav_path) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(samples.astype("<i2").tobytes())
    return name


def render_audio(notes_or_midi, soundfont=AUTO, sample_rate: int = 22050) -> tuple[np.ndarray, int]:
    """(int16 mono samples, sample rate) of notes, as `render_wav` would write them;
    `IPython.display.Audio(samples, rate=rate)` plays them in a notebook. For W&B log the file instead:
    `wandb.Audio(wav_path)` (from an array it needs the soundfile package)."""
    samples, sample_rate, _ = _render(notes_or_midi, soundfont, sample_rate)
    return samples, sample_rate


def to_seconds(quarters, tempos=()) -> np.ndarray:
    """Seconds from the start at each time in quarter notes, following a tempo map [(start quarters, bpm)];
    before the first tempo (or with none) the tempo is 120 bpm, as in a MIDI file."""
    changes = sorted(((float(start), float(bpm)) for start, bpm in tempos), key=lambda c: c[0])  # ties: last wins
    if any(bpm <= 0 or not math.isfinite(bpm) for _, bpm in changes):
        raise ValueError(f"tempos must be positive beats per minute, got {[bpm for _, bpm in changes]}")
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0.0, DEFAULT_BPM))
    starts = np.array([start for start, _ in changes])
    seconds_per_quarter = 60.0 / np.array([bpm for _, bpm in changes])
    start_seconds = np.concatenate([[0.0], np.cumsum(np.diff(starts) * seconds_per_quarter[:-1])])
    quarters = np.asarray(quarters, dtype=float)
    i = np.clip(np.searchsorted(starts, quarters, side="right") - 1, 0, None)
    return start_seconds[i] + (quarters - starts[i]) * seconds_per_quarter[i]


def find_soundfont() -> Path | None:
    """The General MIDI SoundFont named by $SEQKIT_SOUNDFONT, else one in a standard system location, else None."""
    if os.environ.get(ENV_VAR):
        return check_soundfont(os.environ[ENV_VAR], source=f"${ENV_VAR}")
    candidates = [Path(p) for p in SYSTEM_SOUNDFONTS]
    candidates += [p for d in SOUNDFONT_DIRS if Path(d).is_dir() for p in sorted(Path(d).iterdir())
                   if p.suffix.lower() in (".sf2", ".sf3")]
    return next((p for p in candidates if p.is_file() and _is_soundfont(p)), None)


def check_soundfont(path, source: str = "soundfont") -> Path:
    """`path` as a Path if it is a SoundFont file (RIFF 'sfbk'), else a one-line ValueError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"{source} {path} does not exist; pass the path of a .sf2/.sf3 file "
                         "(Debian: apt-get install fluid-soundfont-gm) or leave it out for the built-in synthesizer")
    if not _is_soundfont(path):
        raise ValueError(f"{source} {path} is not a SoundFont (no RIFF 'sfbk' header); pass a .sf2/.sf3 file")
    return path


def _is_soundfont(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            header = f.read(12)
    except OSError:
        return False
    return header[:4] == b"RIFF" and header[8:12] == b"sfbk"


def _render(notes_or_midi, soundfont, sample_rate) -> tuple[np.ndarray, int, str]:
    """Everything is checked and synthesised before any file is opened."""
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 96000:
        raise ValueError(f"sample_rate must be a whole number of Hz from 8000 to 96000, got {sample_rate!r}")
    notes = _notes(notes_or_midi)
    path = _soundfont(soundfont)
    if path is None:
        audio, name = _additive(notes, sample_rate), BUILT_IN
    else:
        end = float(to_seconds([n.start + n.duration for n in notes], notes.tempos).max())
        audio = _fit_length(_fluidsynth(notes, path, sample_rate), end, sample_rate)
        name = f"{path.resolve().name} via FluidSynth"
    peak = float(np.abs(audio).max())
    if peak > 0:
        audio = audio * (PEAK / peak)
    return np.round(audio * 32767).astype(np.int16), sample_rate, name


def _notes(notes_or_midi) -> NoteList:
    if isinstance(notes_or_midi, (str, os.PathLike)):
        path = Path(notes_or_midi)
        if not path.is_file():
            raise ValueError(f"no MIDI file at {path}; pass an existing .mid file or a list of notes")
        try:
            notes = read_midi(path.read_bytes())
        except Exception as error:  # malformed files fail deep inside the reader, in many ways
            detail = " ".join(str(error).split())[:120]
            raise ValueError(f"{path} is not a readable MIDI file ({type(error).__name__}: {detail})") from None
        if not notes:
            raise ValueError(f"{path} has no notes to render; pass a MIDI file with at least one note")
    else:
        notes = NoteList(notes_or_midi, getattr(notes_or_midi, "time_signatures", ()),
                         getattr(notes_or_midi, "tempos", ()))
        if not notes:
            raise ValueError("no notes to render: the note list is empty; pass at least one note")
    bad = next((n for n in notes if not (0 <= n.pitch <= 127 and n.start >= 0 and n.duration >= 0)), None)
    if bad is not None:
        raise ValueError(f"cannot render {bad}: pitch must be 0-127, start and duration not negative")
    return notes


def _additive(notes: NoteList, sample_rate: int) -> np.ndarray:
    """Each note: a few harmonics under an attack / decay-towards-sustain / release envelope, louder with
    velocity; all summed into one float buffer that ends RELEASE seconds after the last note ends."""
    starts = to_seconds([n.start for n in notes], notes.tempos)
    ends = to_seconds([n.start + n.duration for n in notes], notes.tempos)
    total = math.ceil((ends.max() + RELEASE) * sample_rate)
    audio = np.zeros(total)
    onsets = np.round(starts * sample_rate).astype(int)
    held = np.round((ends - starts) * sample_rate).astype(int)
    same_wave = lambda i: (notes[i].pitch, int(held[i]))  # noqa: E731
    for (pitch, held_samples), group in itertools.groupby(sorted(range(len(notes)), key=same_wave), same_wave):
        wave = _note_wave(pitch, held_samples, sample_rate)  # once per pitch and length: pieces repeat them
        for i in group:
            count = min(len(wave), total - onsets[i])
            audio[onsets[i]:onsets[i] + count] += wave[:count] * (notes[i].velocity / 127)
    return audio


def _note_wave(pitch: int, held_samples: int, sample_rate: int) -> np.ndarray:
    """One note at full velocity, held for `held_samples` then released. It starts at phase 0 wherever the
    note starts, so all notes of one pitch and length share it."""
    held = held_samples / sample_rate
    t = np.arange(held_samples + math.ceil(RELEASE * sample_rate)) / sample_rate
    level = _held_level(np.minimum(t, held))          # frozen at note-off, then released
    release = np.clip((t - held) / RELEASE, 0.0, 1.0)
    frequency = 440.0 * 2 ** ((pitch - 69) / 12)
    return level * (1.0 - release) ** 2 * _tone(2 * np.pi * frequency * t, frequency, sample_rate)


def _tone(phase: np.ndarray, frequency: float, sample_rate: int) -> np.ndarray:
    """The sum of HARMONICS below the Nyquist frequency, with sin(k+1)x = 2cos(x)sin(kx) - sin(k-1)x: two
    transcendental calls instead of one per harmonic."""
    below_nyquist = [amp for k, amp in enumerate(HARMONICS, start=1) if k * frequency < sample_rate / 2]
    if not below_nyquist:  # a pitch above what this sample rate can carry stays silent rather than alias
        return np.zeros_like(phase)
    previous, current, twice_cos = np.zeros_like(phase), np.sin(phase), 2 * np.cos(phase)
    tone = below_nyquist[0] * current
    for amp in below_nyquist[1:]:
        previous, current = current, twice_cos * current - previous
        tone += amp * current
    return tone


def _held_level(t: np.ndarray) -> np.ndarray:
    return np.minimum(t / ATTACK, 1.0) * (SUSTAIN + (1 - SUSTAIN) * np.exp(-t / DECAY))


def _fit_length(audio: np.ndarray, end: float, sample_rate: int) -> np.ndarray:
    """Keep a SoundFont's ringing until it falls below -60 dB, at least RELEASE and at most MAX_TAIL seconds
    past the last note, fading out over the last 20 ms so a cut never clicks."""
    shortest, longest = math.ceil((end + RELEASE) * sample_rate), math.ceil((end + MAX_TAIL) * sample_rate)
    audio = np.pad(audio, (0, max(0, shortest - len(audio))))
    loud = np.flatnonzero(np.abs(audio) > 1e-3 * max(float(np.abs(audio).max()), 1e-12))
    audio = audio[:min(max(shortest, loud[-1] + 1 if len(loud) else 0), longest)].copy()
    fade = min(len(audio), round(0.02 * sample_rate))
    audio[len(audio) - fade:] *= np.linspace(1.0, 0.0, fade)
    return audio


def _soundfont(soundfont) -> Path | None:
    """The SoundFont to play with, or None for the built-in synthesizer. "auto" quietly falls back to the
    built-in synthesizer when FluidSynth is missing, unless $SEQKIT_SOUNDFONT asked for a SoundFont."""
    if soundfont is None or soundfont == "builtin":
        return None
    path = find_soundfont() if soundfont == AUTO else check_soundfont(soundfont)
    if path is None or shutil.which("fluidsynth"):
        return path
    if soundfont == AUTO and not os.environ.get(ENV_VAR):
        return None
    raise ValueError(f"playing SoundFont {path.name} needs the FluidSynth program, which is not installed; "
                     "apt-get install fluidsynth (or brew install fluid-synth), or use the built-in synthesizer")


def _fluidsynth(notes: NoteList, path: Path, sample_rate: int) -> np.ndarray:
    """Play the notes' MIDI file with the FluidSynth program into raw 32-bit floats (no clipping before we
    normalise), stereo → mono."""
    with tempfile.TemporaryDirectory(prefix="seqkit-audio-") as folder:
        midi, raw = Path(folder) / "notes.mid", Path(folder) / "audio.raw"
        midi.write_bytes(midi_bytes(notes, ticks_per_quarter=480))
        result = subprocess.run(["fluidsynth", "-n", "-i", "-q", "-r", str(sample_rate), "-T", "raw",
                                 "-O", "float", "-E", "little", "-F", str(raw), str(path), str(midi)],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        audio = np.fromfile(raw, dtype="<f4") if raw.is_file() else np.zeros(0)
    failed = "failed to load" in result.stderr.lower()  # then it exits 0 playing its default SoundFont
    if result.returncode != 0 or failed or not np.any(audio):
        lines = [line for line in result.stderr.splitlines() if "error" in line.lower()] or [
            f"exit status {result.returncode}, no sound"]
        raise ValueError(f"FluidSynth could not play {path}: {lines[-1].strip()}; pass a working .sf2/.sf3 file")
    return audio[:len(audio) // 2 * 2].reshape(-1, 2).mean(axis=1).astype(float)
