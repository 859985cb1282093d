"""Scores music21 parses (MusicXML, kern, ABC) → NoteList."""
from __future__ import annotations

from pathlib import Path

from music21 import converter, meter, stream, tempo

from seqkit.music.notes import Note, NoteList, changes_only, sort_notes


def read_score(path: Path) -> NoteList:
    # forceSource: never load (or leave behind) pickles from earlier runs in music21's scratch folder
    score = converter.parse(path, forceSource=True)
    if isinstance(score, stream.Opus):
        raise ValueError(f"it holds {len(score.scores)} pieces; split it into one file per piece")
    return notes_from_score(score)


def notes_from_score(score: stream.Stream) -> NoteList:
    """Notes of every part (tied notes merged); the part index becomes the program.

    Repeats stay as notated: expanding them (as music21's MIDI export does) costs ~0.3 s a chorale."""
    parts = list(score.parts) or [score]
    shift = _pickup_shift(parts[0])
    at = lambda offset: float(offset) + shift if offset > 0 else 0.0  # noqa: E731 (bar 1 still starts at 0)
    notes = []
    for program, part in enumerate(parts):
        for element in part.flatten().stripTies().notes:
            if element.quarterLength == 0:  # grace notes and chord symbols take no time
                continue
            start = float(element.offset) + shift
            notes.extend(Note(pitch.midi, start, float(element.quarterLength), program=program)
                         for pitch in element.pitches)
    flat = parts[0].flatten()
    time_signatures = [(at(ts.offset), ts.numerator, ts.denominator)
                       for ts in flat.getElementsByClass(meter.TimeSignature)]
    tempos = [(at(mark.offset), mark.getQuarterBPM()) for mark in flat.getElementsByClass(tempo.MetronomeMark)
              if mark.getQuarterBPM()]
    return NoteList(sort_notes(notes), changes_only(time_signatures), changes_only(tempos))


def _pickup_shift(part: stream.Stream) -> float:
    """How far a pickup (anacrusis) bar starts into a full bar, so bar lines fall on our bar grid."""
    first = part.getElementsByClass(stream.Measure).first()
    return float(first.paddingLeft) if first is not None else 0.0
