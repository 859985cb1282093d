"""Scores music21 parses (MusicXML, kern, ABC) → NoteList."""
from __future__ import annotations

from pathlib import Path

from music21 import chord, converter, meter, note, stream, tempo

from seqkit.music.notes import Note, NoteList, changes_only, sort_notes


def read_score(path: Path) -> NoteList:
    # forceSource: never load (or leave behind) pickles from earlier runs in music21's scratch folder
    score = converter.parse(path, forceSource=True)
    if isinstance(score, stream.Opus):
        raise ValueError(f"it holds {len(score.scores)} pieces; split it into one file per piece")
    return notes_from_score(score)


def notes_from_score(score: stream.Stream) -> NoteList:
    """Notes of every part, tied notes merged into one; the part index becomes the program.

    Repeats stay as notated: expanding them (as music21's MIDI export does) costs ~0.3 s a chorale."""
    parts = list(score.getElementsByClass(stream.Part)) or [score]
    shift = _pickup_shift(parts[0])
    notes = []
    for program, part in enumerate(parts):
        notes += _merge_ties(part.flatten().notes, shift, program)
    flat = parts[0].flatten()
    at = lambda offset: float(offset) + shift if offset > 0 else 0.0  # noqa: E731 (bar 1 still starts at 0)
    time_signatures = [(at(ts.offset), ts.numerator, ts.denominator)
                       for ts in flat.getElementsByClass(meter.TimeSignature)]
    tempos = [(at(mark.offset), mark.getQuarterBPM()) for mark in flat.getElementsByClass(tempo.MetronomeMark)
              if mark.getQuarterBPM()]
    return NoteList(sort_notes(notes), changes_only(time_signatures), changes_only(tempos))


def _merge_ties(elements, shift: float, program: int) -> list[Note]:
    """Notes and chords → Notes, a tied run of one pitch becoming one note. Does what music21's stripTies
    does without its deep copy of the score, which would double the reading time."""
    notes, tied = [], {}  # tied: pitch → index in notes of the note its tie continues
    for element in elements:
        if element.quarterLength == 0:  # grace notes and chord symbols take no time
            continue
        start, duration = float(element.offset) + shift, float(element.quarterLength)
        for component in element.notes if isinstance(element, chord.ChordBase) else (element,):
            if not isinstance(component, note.Note):  # unpitched percussion
                continue
            pitch, tie = component.pitch.midi, component.tie.type if component.tie else None
            held = tied.pop(pitch, None)
            if tie in ("continue", "stop") and held is not None and _ends_at(notes[held], start):
                notes[held] = notes[held]._replace(duration=start + duration - notes[held].start)
                if tie == "continue":
                    tied[pitch] = held
                continue
            if tie in ("start", "continue"):
                tied[pitch] = len(notes)
            notes.append(Note(pitch, start, duration, program=program))
    return notes


def _ends_at(note: Note, time: float) -> bool:
    return abs(note.start + note.duration - time) < 1e-6  # triplet offsets are not exact in floats


def _pickup_shift(part: stream.Stream) -> float:
    """How far a pickup (anacrusis) bar starts into a full bar, so bar lines fall on our bar grid."""
    first = part.getElementsByClass(stream.Measure).first()
    return float(first.paddingLeft) if first is not None else 0.0
