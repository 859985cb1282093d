"""What a MIDI tokenizer's round trip (notes → tokens → notes) does to a piece: which notes come back as they
were, and why the others do not.

    counts = round_trip_fidelity(tokenizer.read_notes(path), tokenizer)
    print("\\n".join(fidelity_lines(counts)))

    round trip: 1180 of 1214 notes exact
      moved to the grid: 30 (onset or length between the 12 steps per quarter note)
      merged: 4 (struck with a note of the same pitch, e.g. two parts in unison; programs=True keeps parts apart)

Each source note counts once, under the first that applies: skipped drum note, pitch outside the range,
merged, ended early, cut at the longest duration, moved to the grid, exact. Exact means the same onset, pitch
and duration (to 1e-6 quarter notes); velocities and programs are not compared.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from seqkit.music.notes import transpose_notes
from seqkit.music.tokenizer import MidiSettings, MidiTokenizer

TOLERANCE = 1e-6  # quarter notes: float offsets of triplets from scores are not exact


@dataclass(frozen=True)
class Fidelity:
    notes: int         # in the source, skipped drum notes included
    exact: int         # same onset, pitch and duration
    moved: int         # onset or duration snapped to the grid (durations to at least one step)
    merged: int        # struck at the same step as a longer note of the same pitch (and program): dropped
    ended_early: int   # cut where a note of the same pitch (and program) starts while it sounds
    cut: int           # longer than max_duration_quarters: cut to it
    out_of_range: int  # pitch outside pitch_low..pitch_high: dropped
    drums: int         # drum-channel notes the MIDI reader skipped
    settings: MidiSettings
    transposed: int = 0  # semitones normalize_key moved the piece by (a note counts as exact at its new pitch)


def round_trip_fidelity(notes, tokenizer: MidiTokenizer) -> Fidelity:
    """Count what encoding `notes` (a NoteList, or a list of Notes) and decoding the tokens does to each."""
    s = tokenizer.settings
    tokens, shift = tokenizer.encode_keyed(notes)  # with normalize_key the tokenizer transposes by `shift`
    count, drums = len(notes), getattr(notes, "drum_notes", 0)
    if shift:  # compare at the pitches the tokens hold
        notes = transpose_notes(notes, shift)
    longest = s.max_duration_quarters * s.grid
    back = {(note.program, note.pitch, tokenizer._step(note.start)): tokenizer._step(note.duration)
            for note in tokenizer.decode_notes(tokens)}
    struck = defaultdict(list)  # what the tokenizer keeps one of: (program or 0, pitch, start step) → notes
    out_of_range = 0
    for note in notes:
        if s.pitch_low <= note.pitch <= s.pitch_high:
            struck[note.program if s.programs else 0, note.pitch, max(0, tokenizer._step(note.start))].append(note)
        else:
            out_of_range += 1
    exact = moved = merged = ended_early = cut = 0
    for key, group in struck.items():
        snapped = [max(1, tokenizer._step(note.duration)) for note in group]
        # the tokenizer keeps the longest, then the loudest; of equals, count an exact one as kept
        _, _, on_grid, kept = max((min(length, longest), note.velocity, _on_grid(note, key[2], length, s.grid), i)
                                  for i, (length, note) in enumerate(zip(snapped, group)))
        merged += len(group) - 1
        if key not in back:  # never expected: the tokenizer keeps one note of each key and step
            merged += 1
        elif back[key] < min(snapped[kept], longest):
            ended_early += 1
        elif snapped[kept] > longest:
            cut += 1
        elif on_grid:
            exact += 1
        else:
            moved += 1
    out_of_range += count - len(notes)  # moved out of MIDI's pitches by normalize_key
    return Fidelity(count + drums, exact, moved, merged, ended_early, cut, out_of_range, drums, s, shift)


def _on_grid(note, start_step: int, duration_steps: int, grid: int) -> bool:
    return (abs(note.start - start_step / grid) < TOLERANCE
            and abs(note.duration - duration_steps / grid) < TOLERANCE)


def fidelity_lines(counts: Fidelity) -> list[str]:
    """`round trip: K of N notes exact`, then a short line for each reason some notes are not."""
    s = counts.settings
    reasons = [
        (counts.moved, "moved to the grid", f"onset or length between the {s.grid} steps per quarter note"),
        (counts.merged, "merged", "struck with a note of the same pitch, e.g. two parts in unison"
                                  + ("" if s.programs else "; programs=True keeps parts apart")),
        (counts.ended_early, "ended early", "where a note of the same pitch started while they sounded"),
        (counts.cut, "cut", f"longer than max_duration_quarters={s.max_duration_quarters}"),
        (counts.out_of_range, "dropped", f"pitch outside {s.pitch_low}..{s.pitch_high}"),
        (counts.drums, "drum notes skipped", "MIDI channel 10"),
    ]
    where = "onto C major's scale" if s.key_estimate == "scale" else "in C major or A minor"
    transposed = [f"  transposed by {counts.transposed:+d} semitones (normalize_key: the opening {where})"
                  ] if counts.transposed else []
    return [f"round trip: {counts.exact} of {counts.notes} notes exact", *transposed] + [
        f"  {label}: {count} ({why})" for count, label, why in reasons if count]
