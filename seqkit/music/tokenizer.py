"""MidiTokenizer: music files ↔ notes ↔ a REMI-style token sequence.

A piece reads as

    BOS  Bar TimeSig_4/4  Position_0 Tempo_120 Program_0 Pitch_60 Velocity_3 Duration_4 ...  Bar ...  EOS

Each bar opens with `Bar` (an empty bar is a lone `Bar`); `Position_i` is the onset within the bar and
`Duration_d` the length, both in grid steps (`grid` per quarter note). Notes at one position share its
`Position` token. TimeSig follows `Bar` when the time signature changes and Tempo follows `Position`
when the tempo does; TimeSig, Tempo, Program and Velocity tokens exist only when their setting is on.
Without time-signature tokens every bar is 4/4.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from seqkit.io import atomic_path
from seqkit.music.midi_file import midi_bytes, read_midi
from seqkit.music.notes import Note, NoteList, changes_only, sort_notes
from seqkit.music.score_file import notes_from_score, read_score

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".krn", ".abc")
SPECIALS = ("PAD", "BOS", "EOS")
TEMPOS = tuple(range(40, 241, 10))  # quarter notes per minute; others snap to the nearest
DENOMINATORS = (2, 4, 8)
TICKS_PER_STEP = 120  # written MIDI files: 480 ticks per quarter at the default grid


@dataclass(frozen=True)
class MidiSettings:
    grid: int = 4                   # positions per quarter note (4: sixteenth notes)
    max_bar_quarters: int = 8       # longest bar; a longer time signature falls back to 4/4
    max_duration_quarters: int = 8  # longer notes are cut to this
    pitch_low: int = 0              # notes outside pitch_low..pitch_high are dropped
    pitch_high: int = 127
    velocity_bins: int = 0          # 0: no velocity tokens, every note plays at 64
    tempo: bool = False
    time_signature: bool = True
    programs: bool = False          # a Program token before each note, for multi-instrument files

    def __post_init__(self):
        whole = lambda value, low, high=None: (  # noqa: E731
            isinstance(value, int) and low <= value and (high is None or value <= high))
        checks = [
            ("grid", whole(self.grid, 1, 96), "an integer from 1 to 96"),
            ("max_bar_quarters", whole(self.max_bar_quarters, 4), "an integer of at least 4 (a 4/4 bar)"),
            ("max_duration_quarters", whole(self.max_duration_quarters, 1), "a positive integer"),
            ("pitch_low", whole(self.pitch_low, 0, self.pitch_high), "an integer from 0 to pitch_high"),
            ("pitch_high", whole(self.pitch_high, self.pitch_low, 127), "an integer from pitch_low to 127"),
            ("velocity_bins", whole(self.velocity_bins, 0, 127), "an integer from 0 (off) to 127"),
        ]
        for name, ok, requirement in checks:
            if not ok:
                raise ValueError(f"MIDI tokenizer setting {name} must be {requirement}, got {getattr(self, name)!r}")


class MidiTokenizer:
    kind = "midi"

    def __init__(self, **settings):
        known = [f.name for f in fields(MidiSettings)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(f"unknown MIDI tokenizer setting(s) {unknown}; known: {', '.join(known)}")
        self.settings = MidiSettings(**settings)
        self.tokens = self._vocabulary()  # id → (kind, value)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.names = [kind if value is None else f"{kind}_{_value_name(value)}" for kind, value in self.tokens]
        self.vocab_size = len(self.tokens)
        self.pad_id, self.bos_id, self.eos_id = (self.ids[name, None] for name in SPECIALS)

    def _vocabulary(self) -> list[tuple]:
        s = self.settings
        tokens = [(name, None) for name in SPECIALS] + [("Bar", None)]
        tokens += [("Position", i) for i in range(s.max_bar_quarters * s.grid)]
        if s.programs:
            tokens += [("Program", p) for p in range(128)]
        tokens += [("Pitch", p) for p in range(s.pitch_low, s.pitch_high + 1)]
        tokens += [("Velocity", b) for b in range(s.velocity_bins)]
        tokens += [("Duration", d) for d in range(1, s.max_duration_quarters * s.grid + 1)]
        if s.tempo:
            tokens += [("Tempo", bpm) for bpm in TEMPOS]
        if s.time_signature:
            tokens += [("TimeSig", (n, d)) for d in DENOMINATORS for n in range(1, s.max_bar_quarters * d // 4 + 1)
                       if n * 4 * s.grid % d == 0]
        return tokens

    # --- files ---------------------------------------------------------------------------------

    def read_notes(self, path) -> NoteList:
        """Notes of a MIDI file (.mid/.midi; drum-channel notes skipped) or a score music21 reads (MusicXML,
        kern, ABC). Raises ValueError naming the file if it cannot be read."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in MIDI_SUFFIXES + SCORE_SUFFIXES:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of "
                             f"{', '.join(MIDI_SUFFIXES + SCORE_SUFFIXES)}")
        try:
            return read_midi(path.read_bytes()) if suffix in MIDI_SUFFIXES else read_score(path)
        except Exception as error:  # music21 raises all kinds of errors on malformed files
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            raise ValueError(f"{path}: cannot read as MIDI/score: {reason}") from error

    def notes_from_score(self, score) -> NoteList:
        """Notes of an already parsed music21 Stream; each part's index becomes its program."""
        return notes_from_score(score)

    def encode_file(self, path) -> list[int]:
        notes = self.read_notes(path)
        if not notes:
            raise ValueError(f"{path}: no notes found")
        s = self.settings
        if not any(s.pitch_low <= note.pitch <= s.pitch_high for note in notes):
            raise ValueError(f"{path}: no notes within the tokenizer's pitches {s.pitch_low}..{s.pitch_high}")
        return self.encode_notes(notes)

    def write_midi(self, notes_or_ids, path) -> None:
        """Write notes (or token ids) as a MIDI file, one track per program, as the tokens represent them:
        on the grid, clipped to the tokenizer's ranges."""
        is_notes = len(notes_or_ids) > 0 and isinstance(notes_or_ids[0], Note)
        notes = self.decode_notes(self.encode_notes(notes_or_ids) if is_notes else notes_or_ids)
        data = midi_bytes(notes, TICKS_PER_STEP * self.settings.grid)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    # --- tokens --------------------------------------------------------------------------------

    def encode_notes(self, notes) -> list[int]:
        """BOS, the notes (and time signatures/tempos of a NoteList) as tokens, EOS.

        Onsets and durations snap to the nearest grid step (durations to at least one step); a note that a
        later one of the same pitch and program starts inside is cut short there, as MIDI would."""
        s = self.settings
        events = [(step, 0, ("Tempo", bpm)) for step, bpm in self._grid_tempos(notes)]
        events += [(note[0], 1, note) for note in self._grid_notes(notes)]
        events.sort(key=lambda event: event[:2])  # stable: notes stay in (program, pitch) order
        meters = self._grid_time_signatures(notes)
        ids = [self.bos_id]
        bar_start = bar_steps = position = tempo = None
        meter, written_meter = (4, 4), None
        for step, _, event in events:
            while bar_start is None or step >= bar_start + bar_steps:
                bar_start = 0 if bar_start is None else bar_start + bar_steps
                while meters and meters[0][0] <= bar_start:
                    meter = meters.pop(0)[1]
                bar_steps = self._bar_steps(meter)
                ids.append(self.ids["Bar", None])
                if s.time_signature and meter != written_meter:
                    ids.append(self.ids["TimeSig", meter])
                    written_meter = meter
                position = None
            if step - bar_start != position:
                position = step - bar_start
                ids.append(self.ids["Position", position])
            if event[0] == "Tempo":
                if event != tempo:
                    ids.append(self.ids[event])
                    tempo = event
                continue
            _, program, pitch, velocity, duration = event
            if s.programs:
                ids.append(self.ids["Program", program])
            ids.append(self.ids["Pitch", pitch])
            if s.velocity_bins:
                ids.append(self.ids["Velocity", self._velocity_bin(velocity)])
            ids.append(self.ids["Duration", duration])
        ids.append(self.eos_id)
        return ids

    def decode_notes(self, ids) -> NoteList:
        """Notes of a token sequence. Never raises: tokens that make no sense where they stand (a Pitch
        without a Duration, a Position before any Bar, ...) are skipped, and decoding stops at EOS."""
        grid = self.settings.grid
        notes, meters, tempos = [], [], []
        bar_start, bar_steps = None, self._bar_steps((4, 4))
        onset = pitch = None
        program, velocity = 0, 64
        for token_id in ids:
            token_id = int(token_id)
            if not 0 <= token_id < self.vocab_size:
                continue
            kind, value = self.tokens[token_id]
            if kind == "EOS":
                break
            if kind == "Bar":
                bar_start = 0 if bar_start is None else bar_start + bar_steps
                onset = pitch = None
            elif bar_start is None:
                continue
            elif kind == "TimeSig":
                bar_steps = self._bar_steps(value)
                meters.append((bar_start / grid, *value))
            elif kind == "Position":
                onset = bar_start + value if value < bar_steps else None
                pitch = None
            elif onset is None:
                continue
            elif kind == "Tempo":
                tempos.append((onset / grid, float(value)))
            elif kind == "Program":
                program = value
            elif kind == "Pitch":
                pitch, velocity = value, 64
            elif kind == "Velocity" and pitch is not None:
                velocity = self._bin_velocity(value)
            elif kind == "Duration" and pitch is not None:
                notes.append(Note(pitch, onset / grid, value / grid, velocity, program))
                pitch, program = None, 0
        return NoteList(sort_notes(notes), changes_only(meters), changes_only(tempos))

    def describe(self, ids) -> list[str]:
        return [self.names[int(i)] for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self.settings)}

    @classmethod
    def from_dict(cls, d: dict) -> MidiTokenizer:
        settings = dict(d)
        kind = settings.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"expected a {cls.kind!r} tokenizer, got kind {kind!r}")
        return cls(**settings)

    # --- the grid ------------------------------------------------------------------------------

    def _step(self, quarters: float) -> int:
        return math.floor(quarters * self.settings.grid + 0.5)

    def _bar_steps(self, meter: tuple[int, int]) -> int:
        numerator, denominator = meter
        return numerator * 4 * self.settings.grid // denominator

    def _grid_notes(self, notes) -> list[tuple[int, int, int, int, int]]:
        """(start step, program, pitch, velocity, duration steps) sorted, with same-key overlaps resolved."""
        s = self.settings
        longest = s.max_duration_quarters * s.grid
        placed = []
        last = {}  # (program, pitch) → index in placed of its latest note
        quantised = [(max(0, self._step(note.start)), note.program if s.programs else 0, note.pitch,
                      self._bin_velocity(self._velocity_bin(note.velocity)) if s.velocity_bins else 64,
                      min(longest, max(1, self._step(note.duration))))
                     for note in notes if s.pitch_low <= note.pitch <= s.pitch_high]
        for start, program, pitch, velocity, duration in sorted(quantised, key=lambda n: (n[0], -n[4])):
            previous = last.get((program, pitch))
            if previous is not None:
                before = placed[previous]
                if before[0] == start:  # the same note struck twice at once: keep the longer
                    continue
                if start < before[0] + before[4]:
                    placed[previous] = (*before[:4], start - before[0])
            last[program, pitch] = len(placed)
            placed.append((start, program, pitch, velocity, duration))
        return sorted(placed)

    def _grid_time_signatures(self, notes) -> list[tuple[int, tuple[int, int]]]:
        if not self.settings.time_signature:
            return []
        return [(self._step(start), (n, d) if ("TimeSig", (n, d)) in self.ids else (4, 4))
                for start, n, d in getattr(notes, "time_signatures", [])]

    def _grid_tempos(self, notes) -> list[tuple[int, int]]:
        if not self.settings.tempo:
            return []
        nearest = lambda bpm: min(TEMPOS, key=lambda t: abs(t - bpm))  # noqa: E731
        return changes_only([(max(0, self._step(start)), nearest(bpm))
                             for start, bpm in getattr(notes, "tempos", [])])

    def _velocity_bin(self, velocity: int) -> int:
        return (min(127, max(1, velocity)) - 1) * self.settings.velocity_bins // 127

    def _bin_velocity(self, velocity_bin: int) -> int:
        """The bin's middle velocity; bin b holds 1 + ceil(b * 127 / bins) ... ceil((b + 1) * 127 / bins)."""
        bins = self.settings.velocity_bins
        lowest, highest = 1 - (-velocity_bin * 127 // bins), -(-(velocity_bin + 1) * 127 // bins)
        return (lowest + highest) // 2


def _value_name(value) -> str:
    return f"{value[0]}/{value[1]}" if isinstance(value, tuple) else str(value)
