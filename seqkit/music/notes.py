"""The note list every music file becomes: notes plus the piece's time signatures and tempos."""
from __future__ import annotations

from typing import NamedTuple


class Note(NamedTuple):
    pitch: int        # MIDI number, 60 = middle C
    start: float      # quarter notes from the beginning
    duration: float   # quarter notes
    velocity: int = 64
    program: int = 0  # General MIDI program for MIDI files, part index for scores


class NoteList(list):
    """A list of `Note`s that also carries the piece's time signatures and tempos.

    time_signatures: [(start, numerator, denominator)], tempos: [(start, quarter notes per minute)],
    both sorted by start (in quarter notes). A plain list of notes works wherever a NoteList does.
    """

    def __init__(self, notes=(), time_signatures=(), tempos=()):
        super().__init__(notes)
        self.time_signatures = list(time_signatures)
        self.tempos = list(tempos)

    def __repr__(self) -> str:
        return (f"NoteList({list.__repr__(self)}, time_signatures={self.time_signatures}, "
                f"tempos={self.tempos})")


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
