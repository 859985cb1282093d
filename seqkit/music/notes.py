"""The note list every music file becomes: notes plus the piece's time signatures and tempos."""
from __future__ import annotations

from itertools import repeat
from typing import NamedTuple

import numpy as np


class Note(NamedTuple):
    pitch: int        # MIDI number, 60 = middle C
    start: float      # quarter notes from the beginning
    duration: float   # quarter notes
    velocity: int = 64
    program: int = 0  # General MIDI program for MIDI files, part index for scores


class NoteList(list):
    """A list of `Note`s that also carries the piece's time signatures and tempos.

    time_signatures: [(start, numerator, denominator)], tempos: [(start, quarter notes per minute)],
    both sorted by start (in quarter notes); drum_notes: how many drum-channel notes the MIDI reader
    skipped. A plain list of notes works wherever a NoteList does.
    """

    def __init__(self, notes=(), time_signatures=(), tempos=(), drum_notes: int = 0):
        super().__init__(notes)
        self.time_signatures = list(time_signatures)
        self.tempos = list(tempos)
        self.drum_notes = drum_notes

    def __repr__(self) -> str:
        return (f"NoteList({list.__repr__(self)}, time_signatures={self.time_signatures}, "
                f"tempos={self.tempos}" + (f", drum_notes={self.drum_notes})" if self.drum_notes else ")"))


class NoteArrays(NamedTuple):
    """A piece as one array per `Note` field (in no particular order) plus what a NoteList carries: what
    the MIDI reader makes and the tokenizer encodes without a Python object per note."""
    pitch: np.ndarray     # int64
    start: np.ndarray     # float64, quarter notes
    duration: np.ndarray  # float64, quarter notes
    velocity: np.ndarray  # int64
    program: np.ndarray   # int64
    time_signatures: list
    tempos: list
    drum_notes: int = 0

    @classmethod
    def of(cls, notes) -> NoteArrays:
        """The arrays of a NoteList (or a plain list of Notes)."""
        columns = list(zip(*notes)) or [()] * 5
        return cls(*(np.array(column, dtype) for column, dtype in zip(columns, FIELD_TYPES)),
                   getattr(notes, "time_signatures", []), getattr(notes, "tempos", []),
                   getattr(notes, "drum_notes", 0))

    def note_list(self) -> NoteList:
        """The notes as a NoteList, sorted as `sort_notes` sorts them."""
        order = np.lexsort((self.velocity, self.duration, self.pitch, self.program, self.start))
        columns = (self.pitch, self.start, self.duration, self.velocity, self.program)
        notes = map(tuple.__new__, repeat(Note), zip(*(column[order].tolist() for column in columns)))
        return NoteList(notes, self.time_signatures, self.tempos, self.drum_notes)


FIELD_TYPES = (np.int64, np.float64, np.float64, np.int64, np.int64)


def transpose_notes(notes, semitones: int) -> NoteList:
    """The notes moved by `semitones`; notes that would leave MIDI's 0..127 are dropped."""
    moved = [note._replace(pitch=note.pitch + semitones) for note in notes if 0 <= note.pitch + semitones <= 127]
    return NoteList(moved, getattr(notes, "time_signatures", []), getattr(notes, "tempos", []))


def sort_notes(notes) -> list[Note]:
    return sorted(notes, key=lambda n: (n.start, n.program, n.pitch, n.duration, n.velocity))


def changes_only(events: list[tuple]) -> list[tuple]:
    """Sort (start, *value) events and keep those whose value differs from the one before.

    At equal starts the last event wins, as a player would apply them in order."""
    kept: list[tuple] = []
    for event in sorted(events, key=lambda e: e[0]):
        if kept and kept[-1][0] == event[0]:
            kept.pop()
        if not kept or kept[-1][1:] != event[1:]:
            kept.append(event)
    return kept
