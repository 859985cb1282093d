"""Piano-roll frames, as in Boulanger-Lewandowski et al. (2012): a song is a (T, K) binary array whose
frame t holds the keys sounding at step t (K = 88 piano keys, A0..C8, by default)."""
from __future__ import annotations

import math

import numpy as np

from seqkit.io import atomic_path
from seqkit.music.notes import Note, NoteList, sort_notes

TICKS_PER_QUARTER = 480
SAMPLINGS = ("snap", "start")  # which notes a frame holds: see PianoRoll


class PianoRoll:
    """The "tokenizer" of frame models: keys low..high (MIDI numbers), `frames_per_quarter` frames per
    quarter note. `vocab_size` is the number of keys, K. `sampling` says which notes a frame holds:
    "snap": every note, its onset and end snapped to the nearest frame (it lasts at least one);
    "start": the notes sounding at the frame's start, as the published JSB Chorales set was made (a note
    that starts and ends between two frame starts is left out)."""

    def __init__(self, low: int = 21, high: int = 108, frames_per_quarter: int = 2, sampling: str = "snap"):
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 127):
            raise ValueError(f"piano-roll keys need integers 0 <= low <= high <= 127; got low={low}, high={high}")
        if not (isinstance(frames_per_quarter, int) and 1 <= frames_per_quarter <= 96):
            raise ValueError(f"frames_per_quarter must be an integer from 1 to 96, got {frames_per_quarter}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"frame sampling must be {' or '.join(SAMPLINGS)}, got {sampling!r}")
        self.low, self.high, self.frames_per_quarter, self.sampling = low, high, frames_per_quarter, sampling
        self.vocab_size = high - low + 1

    def saved_settings(self) -> dict:
        return {"low": self.low, "high": self.high, "frames_per_quarter": self.frames_per_quarter,
                "sampling": self.sampling}

    def notes_to_roll(self, notes) -> np.ndarray:
        """(T, K) bool: a key is on in every frame its note sounds in, as `sampling` counts it; notes outside
        low..high are left out. T covers every note."""
        fpq = self.frames_per_quarter
        if self.sampling == "snap":
            step = lambda quarters: math.floor(quarters * fpq + 0.5)  # noqa: E731
            least = 1
        else:  # the first frame starting at or after the onset, up to the first at or after the end
            step = lambda quarters: math.ceil(quarters * fpq - 1e-6)  # noqa: E731
            least = 0
        spans = []
        for note in notes:
            onset = max(0, step(note.start))
            spans.append((note.pitch, onset, max(onset + least, step(note.start + note.duration))))
        roll = np.zeros((max((end for _, _, end in spans), default=0), self.vocab_size), dtype=bool)
        for pitch, onset, end in spans:
            if self.low <= pitch <= self.high:
                roll[onset:end, pitch - self.low] = True
        return roll

    def roll_to_notes(self, roll) -> NoteList:
        """Notes of a roll: each run of consecutive on-frames of a key is one sustained note."""
        roll = np.asarray(roll) != 0
        changes = np.diff(np.pad(roll, ((1, 1), (0, 0))).astype(np.int8), axis=0).T  # (K, T+1)
        keys, onsets = np.nonzero(changes == 1)  # key-major, so onsets and ends pair up in order
        _, ends = np.nonzero(changes == -1)
        fpq = self.frames_per_quarter
        return NoteList(sort_notes(Note(self.low + int(k), int(a) / fpq, int(b - a) / fpq)
                                   for k, a, b in zip(keys, onsets, ends)))

    def read_roll(self, path) -> np.ndarray:
        """(T, K) bool roll of a MIDI file or a score music21 reads."""
        from seqkit.music.tokenizer import MidiTokenizer
        return self.notes_to_roll(MidiTokenizer().read_notes(path))

    def write_midi(self, roll, path) -> None:
        """Write a roll as a one-track MIDI file (written atomically)."""
        from seqkit.music.midi_file import midi_bytes
        data = midi_bytes(self.roll_to_notes(roll), TICKS_PER_QUARTER)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
