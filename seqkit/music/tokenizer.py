"""MidiTokenizer: music files ↔ notes ↔ a REMI-style token sequence.

A piece reads as

    BOS  Bar TimeSig_4/4  Position_0 Tempo_120 Program_0 Pitch_60 Velocity_3 Duration_4 ...  Bar ...  EOS

Each bar opens with `Bar` (an empty bar is a lone `Bar`); `Position_i` is the onset within the bar and
`Duration_d` the length, both in grid steps (`grid` per quarter note). Notes at one position share its
`Position` token. TimeSig follows `Bar` when the time signature changes and Tempo follows `Position`
when the tempo does; TimeSig, Tempo, Program and Velocity tokens exist only when their setting is on.
Without time-signature tokens every bar is 4/4. With `normalize_key` every piece is first transposed
(-5..+6 semitones) so that its first KEY_BARS bars lie on C major's scale (A minor's too) as far as they can,
`key_estimate="scale"`, or so that their Krumhansl-Schmuckler key is C major or A minor, `"krumhansl"`: a
model then learns one key instead of twelve.

The default grid, 12 steps per quarter note, keeps sixteenths and eighth-note triplets; 24 also keeps
thirty-seconds and sixteenth triplets; 4 keeps sixteenths only. `seqkit.music.fidelity` counts what a
round trip changes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from seqkit.io import atomic_path
from seqkit.music.midi_file import midi_bytes, read_midi_arrays
from seqkit.music.notes import Note, NoteArrays, NoteList, changes_only, sort_notes, transpose_notes
from seqkit.music.stats import bar_start, krumhansl_key_of_histogram

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".krn", ".abc")
SPECIALS = ("PAD", "BOS", "EOS")
TEMPOS = tuple(range(40, 241, 10))  # quarter notes per minute; others snap to the nearest
DENOMINATORS = (2, 4, 8)
KEY_BARS = 4  # normalize_key reads the key of at most this many opening bars (the song demo's prompt)
REFERENCE_TONIC = {"major": 0, "minor": 9}  # C major, A minor: the same notes
WHITE_KEYS = np.isin(np.arange(12), (0, 2, 4, 5, 7, 9, 11))  # C major's scale
KEY_ESTIMATES = ("scale", "krumhansl")


@dataclass(frozen=True)
class MidiSettings:
    grid: int = 12                  # steps per quarter note: 12 keeps sixteenths and eighth-note triplets
    max_bar_quarters: int = 8       # longest bar; a longer time signature falls back to 4/4
    max_duration_quarters: int = 8  # longer notes are cut to this
    pitch_low: int = 0              # notes outside pitch_low..pitch_high are dropped
    pitch_high: int = 127
    velocity_bins: int = 0          # 0: no velocity tokens, every note plays at 64
    tempo: bool = False
    time_signature: bool = True
    programs: bool = False          # a Program token before each note, for multi-instrument files
    normalize_key: bool = False     # transpose each piece so its opening bars are in C major or A minor
    key_estimate: str = "scale"     # how normalize_key reads the opening's key: one of KEY_ESTIMATES

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
            ("key_estimate", self.key_estimate in KEY_ESTIMATES, " or ".join(KEY_ESTIMATES)),
        ]
        for name, ok, requirement in checks:
            if not ok:
                raise ValueError(f"MIDI tokenizer setting {name} must be {requirement}, got {getattr(self, name)!r}")


def krumhansl_shift(histogram: np.ndarray) -> int | None:
    """Semitones (-5..6) that move the Krumhansl-Schmuckler key of a pitch-class histogram to C major or A
    minor; None if it has no clear key."""
    key = krumhansl_key_of_histogram(histogram)
    return None if key is None else (REFERENCE_TONIC[key[1]] - key[0] + 5) % 12 - 5


def scale_shift(histogram: np.ndarray) -> int:
    """Semitones (-5..6) that move the largest share of a pitch-class histogram onto C major's scale (the
    white keys); among equal shares, `krumhansl_shift` if it is one of them, else the smallest. 0 for an
    empty histogram. More robust than the key itself over a few bars, which a cadence on the dominant or a
    passing modulation can pull a fifth away (the Bach chorales: see the README, "Song demo")."""
    if not histogram.any():
        return 0
    shifts = sorted(range(-5, 7), key=abs)
    shares = [np.roll(histogram, shift)[WHITE_KEYS].sum() for shift in shifts]
    best = [shift for shift, share in zip(shifts, shares) if share >= max(shares) - 1e-9 * histogram.sum()]
    if len(best) == 1:
        return best[0]
    by_key = krumhansl_shift(histogram)
    return by_key if by_key in best else best[0]


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
        """Notes of a MIDI file (.mid/.midi; drum-channel notes skipped and counted in `.drum_notes`) or a
        score music21 reads (MusicXML, kern, ABC). Raises ValueError naming the file if it cannot be read."""
        piece = self._read(path)
        return piece if isinstance(piece, NoteList) else piece.note_list()

    def _read(self, path) -> NoteList | NoteArrays:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in MIDI_SUFFIXES + SCORE_SUFFIXES:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of "
                             f"{', '.join(MIDI_SUFFIXES + SCORE_SUFFIXES)}")
        try:
            if suffix in MIDI_SUFFIXES:
                return read_midi_arrays(path.read_bytes())
            from seqkit.music.score_file import read_score  # music21: a second's import, for scores only
            return read_score(path)
        except Exception as error:  # music21 and symusic raise all kinds of errors on malformed files
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            raise ValueError(f"{path}: cannot read as MIDI/score: {reason}") from error

    def notes_from_score(self, score) -> NoteList:
        """Notes of an already parsed music21 Stream; each part's index becomes its program."""
        from seqkit.music.score_file import notes_from_score
        return notes_from_score(score)

    def encode_file(self, path) -> list[int]:
        return self.encode_keyed(self.read_piece(path))[0]

    def read_piece(self, path) -> NoteArrays:
        """A music file as arrays, ready for `encode_notes` and `key_shift`; a ValueError naming the file if
        it holds no notes within the tokenizer's pitches."""
        piece = self._read(path)
        if isinstance(piece, NoteList):
            piece = NoteArrays.of(piece)
        if not piece.pitch.size:
            raise ValueError(f"{path}: no notes found")
        s = self.settings
        if not ((piece.pitch >= s.pitch_low) & (piece.pitch <= s.pitch_high)).any():
            raise ValueError(f"{path}: no notes within the tokenizer's pitches {s.pitch_low}..{s.pitch_high}")
        return piece

    def write_midi(self, notes_or_ids, path, transpose: int = 0) -> None:
        """Write notes (or token ids) as a MIDI file, one track per program, as the tokens represent them:
        on the grid, clipped to the tokenizer's ranges; then moved by `transpose` semitones (to undo
        `normalize_key`: `-key_shift_of_file(source)`)."""
        is_notes = len(notes_or_ids) > 0 and isinstance(notes_or_ids[0], Note)
        notes = self.decode_notes(self.encode_notes(notes_or_ids) if is_notes else notes_or_ids)
        notes = transpose_notes(notes, transpose) if transpose else notes
        data = midi_bytes(notes, midi_ticks_per_quarter(self.settings.grid))
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    # --- tokens --------------------------------------------------------------------------------

    def encode_notes(self, notes) -> list[int]:
        """BOS, the notes (and time signatures/tempos of a NoteList; or NoteArrays) as tokens, EOS.

        Onsets and durations snap to the nearest grid step (durations to at least one step, at most
        max_duration_quarters); of notes of one pitch and program struck at one step the longest (then the
        loudest) is kept, and a note that a later one of the same pitch and program starts inside is cut
        short there, as MIDI would."""
        return self.encode_keyed(notes)[0]

    def encode_keyed(self, notes, key_bars: int = KEY_BARS) -> tuple[list[int], int]:
        """`encode_notes`, and the semitones `normalize_key` moved the notes by (0 when it is off; read from
        the first `key_bars` bars, at most KEY_BARS): one key estimate for a caller that needs both."""
        piece = notes if isinstance(notes, NoteArrays) else NoteArrays.of(notes)
        shift = self.key_shift(piece, key_bars)
        return self._encode(piece._replace(pitch=piece.pitch + shift) if shift else piece).tolist(), shift

    def _encode(self, piece: NoteArrays) -> np.ndarray:
        """`encode_notes` with numpy, the piece already in its key: five token slots per event (a bar, a tempo
        or a note; -1 where a slot is empty), the events in time order, the empty slots dropped."""
        s, ids = self.settings, self.ids
        start, program, pitch, velocity, duration = self._grid_notes(piece)
        tempos = self._grid_tempos(piece)
        steps = np.concatenate([np.array([step for step, _ in tempos], dtype=np.int64), start])
        if not steps.size:
            return np.array([self.bos_id, self.eos_id])
        events = np.full((steps.size, 5), -1, dtype=np.int64)  # Position, Tempo/Program, Pitch, Velocity, Duration
        events[:len(tempos), 1] = [ids["Tempo", bpm] for _, bpm in tempos]
        notes = events[len(tempos):]
        if s.programs:
            notes[:, 1] = ids["Program", 0] + program
        notes[:, 2] = ids["Pitch", s.pitch_low] + pitch - s.pitch_low
        if s.velocity_bins:
            notes[:, 3] = ids["Velocity", 0] + (np.clip(velocity, 1, 127) - 1) * s.velocity_bins // 127
        notes[:, 4] = ids["Duration", 1] + duration - 1
        if tempos:  # at one step: the tempo, then the notes in _grid_notes' order
            order = np.argsort(steps, kind="stable")
            steps, events = steps[order], events[order]
        bar_starts, bars = self._bars(int(steps[-1]), self._grid_time_signatures(piece))
        bar_start = bar_starts[np.searchsorted(bar_starts, steps, side="right") - 1]
        events[1:, 0] = np.where(steps[1:] != steps[:-1], ids["Position", 0] + steps[1:] - bar_start[1:], -1)
        events[0, 0] = ids["Position", 0] + steps[0] - bar_start[0]
        order = np.argsort(np.concatenate([2 * bar_starts, 2 * steps + 1]), kind="stable")  # a bar, then its events
        tokens = np.concatenate([bars, events])[order].ravel()
        return np.concatenate([[self.bos_id], tokens[tokens >= 0], [self.eos_id]])

    def key_shift(self, piece: NoteArrays, bars: int = KEY_BARS) -> int:
        """Semitones (-5..6) that `normalize_key` moves `piece` by: its first `bars` bars, at most KEY_BARS (as
        every piece is read for training; fewer for a shorter prompt, never the music after it), onto C
        major's scale (`scale_shift`), or their key to C major or A minor (`krumhansl_shift`), as
        `key_estimate` says. 0 when the setting is off or those bars hold no clear key."""
        if not self.settings.normalize_key:
            return 0
        opening = piece.start < bar_start(piece.time_signatures, min(bars, KEY_BARS))
        histogram = np.bincount(piece.pitch[opening] % 12, weights=piece.duration[opening], minlength=12)
        if self.settings.key_estimate == "scale":
            return scale_shift(histogram)
        return krumhansl_shift(histogram) or 0

    def key_shift_of_file(self, path) -> int:
        """`key_shift` of a music file: what its tokens were transposed by (the file is read only if that can
        be other than 0)."""
        return self.key_shift(self.read_piece(path)) if self.settings.normalize_key else 0

    def _bars(self, last_step: int, meters: list) -> tuple[np.ndarray, np.ndarray]:
        """Start steps of the bars up to the one holding `last_step`, and their token slots: Bar, and TimeSig
        where the time signature changes (a change applies from the first bar starting at or after it)."""
        starts, signatures = [], []  # a run of bars in one meter: their starts, the TimeSig of the first
        bar_start, meter, written, pending = 0, (4, 4), None, list(meters)
        while not starts or bar_start <= last_step:
            while pending and pending[0][0] <= bar_start:
                meter = pending.pop(0)[1]
            bar_steps = self._bar_steps(meter)
            starts.append(np.arange(bar_start, min(pending[0][0], last_step + 1) if pending else last_step + 1,
                                    bar_steps, dtype=np.int64))
            signatures.append(-1)
            if self.settings.time_signature and meter != written:
                signatures[-1], written = self.ids["TimeSig", meter], meter
            bar_start = int(starts[-1][-1]) + bar_steps
        slots = np.full((sum(run.size for run in starts), 5), -1, dtype=np.int64)
        slots[:, 0] = self.ids["Bar", None]
        slots[np.cumsum([0] + [run.size for run in starts[:-1]]), 1] = signatures
        return np.concatenate(starts), slots

    def decode_notes(self, ids) -> NoteList:
        """Notes of a token sequence. Never raises: tokens that make no sense where they stand (a Pitch
        without a Duration, a Position before any Bar, ...) are skipped, and decoding stops at EOS."""
        grid = self.settings.grid
        notes, meters, tempos = [], [], []
        bar_start, bar_steps = None, self._bar_steps((4, 4))
        onset = pitch = None
        program = 0
        velocity = default_velocity = self._default_velocity()
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
                pitch, velocity = value, default_velocity
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

    def _grid_notes(self, piece: NoteArrays) -> np.ndarray:
        """Rows start step, program, pitch, velocity, duration steps of the notes within the pitch range,
        sorted by (start, program, pitch). Of notes of one key (program if `programs`, and pitch) struck at
        one step the longest, then loudest, is kept; a note sounding when the next of its key starts ends."""
        s = self.settings
        keep = (piece.pitch >= s.pitch_low) & (piece.pitch <= s.pitch_high)
        notes = np.empty((5, int(keep.sum())), dtype=np.int64)
        notes[0] = np.maximum(0, np.floor(piece.start[keep] * s.grid + 0.5))
        notes[1] = piece.program[keep] if s.programs else 0
        notes[2], notes[3] = piece.pitch[keep], piece.velocity[keep]
        notes[4] = np.floor(piece.duration[keep] * s.grid + 0.5).clip(1, s.max_duration_quarters * s.grid)
        notes = notes[:, np.lexsort((-notes[3], -notes[4], notes[0], notes[2], notes[1]))]  # by key, start
        start, program, pitch = notes[:3]
        same_key = (pitch[1:] == pitch[:-1]) & (program[1:] == program[:-1])
        struck_again = same_key & (start[1:] == start[:-1])
        if struck_again.any():
            first = np.ones(start.size, dtype=bool)
            first[1:] = ~struck_again
            notes = notes[:, first]
            start, program, pitch = notes[:3]
            same_key = (pitch[1:] == pitch[:-1]) & (program[1:] == program[:-1])
        np.minimum(notes[4, :-1], start[1:] - start[:-1], out=notes[4, :-1], where=same_key)
        return notes[:, np.lexsort((notes[2], notes[1], notes[0]))]

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

    def _default_velocity(self) -> int:
        """What a note without a Velocity token plays at: 64, or with bins the middle of 64's bin, so that
        decoded notes encode and decode back to themselves."""
        bins = self.settings.velocity_bins
        return self._bin_velocity((64 - 1) * bins // 127) if bins else 64

    def _bin_velocity(self, velocity_bin: int) -> int:
        """The bin's middle velocity; bin b holds 1 + ceil(b * 127 / bins) ... ceil((b + 1) * 127 / bins)."""
        bins = self.settings.velocity_bins
        lowest, highest = 1 - (-velocity_bin * 127 // bins), -(-(velocity_bin + 1) * 127 // bins)
        return (lowest + highest) // 2


def _value_name(value) -> str:
    return f"{value[0]}/{value[1]}" if isinstance(value, tuple) else str(value)


def midi_ticks_per_quarter(grid: int) -> int:
    """The resolution of written MIDI files: every grid step a whole number of ticks (480 for grids that
    divide it: 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96, ...)."""
    return 480 if 480 % grid == 0 else 120 * grid
