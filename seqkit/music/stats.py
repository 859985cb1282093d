"""Statistics of continuations: does a model's music follow its prompt the way Bach's does?

Small functions over note lists (`Note`s, times in quarter notes), then the demo's table: the model's
continuations, Bach's real ones, another piece's and the prompts themselves, averaged over held-out pieces.
The continuations of one piece are all measured over one window: the quarters after its prompt, as long
as the shorter of the model's and Bach's continuations.

Definitions (each function's docstring gives its formula):

- pitch-class distance: half the L1 distance of two duration-weighted pitch-class histograms, each summing
  to 1 (0: the same pitch classes in the same proportions, 1: none in common);
- key: Krumhansl-Schmuckler, music21's `analyze('Krumhansl')` (the same profiles and correlation) on
  numbers; not `analyze('key')`, which is Aarden-Essen since music21 9;
- notes per quarter, voices sounding (mean number of notes sounding on each beat);
- overlap: Jaccard index of the (onset in sixteenths, pitch) sets of two continuations over the 16 quarters
  after the later of their prompts ends; near 0 when continuations follow their own prompts;
- MusPy's pitch range, pitch-class entropy, scale consistency, polyphony and empty-beat rate, ported exactly
  (`seqkit.music.muspy_metrics`) and applied to a window's notes shifted to start at 0.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from itertools import combinations
from typing import NamedTuple

import numpy as np

from seqkit.music.muspy_metrics import empty_beat_rate, pitch_class_entropy, pitch_range, polyphony, scale_consistency
from seqkit.music.notes import Note

MAJOR, MINOR = "major", "minor"
OVERLAP_QUARTERS = 16.0


class Continuation(NamedTuple):
    """One held-out piece: its prompt, where the prompt ends (quarters), the model's new notes, Bach's;
    when sampled by `sample_continuations`, also the piece's name and the prompt + the model's
    continuation as tokens (to write as MIDI)."""
    prompt: list[Note]
    prompt_end: float
    model: list[Note]
    bach: list[Note]
    name: str = ""
    ids: tuple[int, ...] = ()


# --- pitch ---------------------------------------------------------------------------------------

def pitch_class_histogram(notes) -> np.ndarray:
    """(12,) share of the sounding time spent on each pitch class (C = 0), summing to 1; zeros if no notes."""
    histogram = np.zeros(12)
    for note in notes:
        histogram[note.pitch % 12] += note.duration
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def pitch_class_distance(a, b) -> float:
    """½ Σ |h_a − h_b| over the 12 duration-weighted pitch-class shares: 0 (same) .. 1 (disjoint).
    An empty side counts as 1 against a non-empty one and 0 against another empty one."""
    ha, hb = pitch_class_histogram(a), pitch_class_histogram(b)
    if not ha.any() or not hb.any():
        return float(ha.any() != hb.any())
    return float(0.5 * np.abs(ha - hb).sum())


@functools.cache
def _key_profiles() -> dict[str, np.ndarray]:
    from music21.analysis.discrete import KrumhanslSchmuckler

    analysis = KrumhanslSchmuckler()
    return {mode: np.array(analysis.getWeights(mode)) for mode in (MAJOR, MINOR)}


def krumhansl_key(notes) -> tuple[int, str] | None:
    """(tonic pitch class, "major" | "minor") by Krumhansl-Schmuckler: the key whose profile (music21's
    weights, rotated to the tonic) correlates best with the duration-weighted pitch-class histogram —
    what music21's `stream.analyze('Krumhansl')` computes, without building a stream. None without notes."""
    return krumhansl_key_of_histogram(pitch_class_histogram(notes))


def krumhansl_key_of_histogram(histogram: np.ndarray) -> tuple[int, str] | None:
    """`krumhansl_key` of a (12,) pitch-class histogram (any scale); None if it is flat."""
    if not histogram.any() or np.ptp(histogram) == 0:
        return None
    best, best_r = None, -math.inf
    for mode, profile in _key_profiles().items():
        for tonic in range(12):
            r = np.corrcoef(np.roll(profile, tonic), histogram)[0, 1]
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def same_krumhansl_key(a, b) -> bool:
    """Whether two note lists have the same Krumhansl-Schmuckler key (tonic and mode); False if either has
    none."""
    key_a = krumhansl_key(a)
    return key_a is not None and key_a == krumhansl_key(b)


# --- time ----------------------------------------------------------------------------------------

def end_time(notes, default: float = 0.0) -> float:
    return max((note.start + note.duration for note in notes), default=default)


def bar_start(time_signatures, bar: int) -> float:
    """Where bar number `bar` (0 = the first) starts, in quarters, for time signatures [(start, num, den)]
    sorted by start (a NoteList's; 4/4 before the first and without any). A change takes effect at the
    first bar line at or after its start."""
    meters = sorted(time_signatures)
    time, length = 0.0, 4.0
    for _ in range(bar):
        while meters and meters[0][0] <= time:
            _, numerator, denominator = meters.pop(0)
            length = numerator * 4 / denominator
        time += length
    return time


def notes_per_quarter(notes, start: float = 0.0, end: float | None = None) -> float:
    """Notes with an onset in [start, end) per quarter of that span; `end` defaults to the last note's end.
    0 for an empty span."""
    end = end_time(notes, start) if end is None else end
    if end <= start:
        return 0.0
    return sum(start <= note.start < end for note in notes) / (end - start)


def _beat_counts(notes, start: float, end: float) -> np.ndarray:
    """Number of notes sounding at each whole beat start, start + 1, ... before end."""
    beats = np.arange(math.ceil(start), math.ceil(end), dtype=float)
    counts = np.zeros(len(beats), int)
    for note in notes:
        counts += (note.start <= beats) & (beats < note.start + note.duration)
    return counts


def voices_sounding(notes, start: float = 0.0, end: float | None = None) -> float:
    """Mean number of notes sounding on each beat (whole quarter) in [start, end); a four-part chorale
    scores about 4. `end` defaults to the last note's end; nan for an empty span."""
    end = end_time(notes, start) if end is None else end
    counts = _beat_counts(notes, start, end)
    return float(counts.mean()) if len(counts) else math.nan


# --- continuations against each other ------------------------------------------------------------

def onset_set(notes, start: float, end: float) -> set[tuple[int, int]]:
    """{(onset in sixteenths from the start of the piece, pitch)} of the notes with onsets in [start, end)."""
    return {(round(note.start * 4), note.pitch) for note in notes if start <= note.start < end}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; 0 when both are empty (nothing shared)."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def overlap(a, a_prompt_end: float, b, b_prompt_end: float, quarters: float = OVERLAP_QUARTERS) -> float:
    """Jaccard index of two continuations' (onset, pitch) sets over the `quarters` after the later of
    their prompts ends. Continuations that each follow their own piece share little."""
    start = max(a_prompt_end, b_prompt_end)
    return jaccard(onset_set(a, start, start + quarters), onset_set(b, start, start + quarters))


def mean_overlap(continuations, prompt_ends, quarters: float = OVERLAP_QUARTERS) -> float:
    """`overlap` averaged over all pairs of different pieces; nan with fewer than two."""
    pieces = list(zip(continuations, prompt_ends))
    pairs = [overlap(a, end_a, b, end_b, quarters) for (a, end_a), (b, end_b) in combinations(pieces, 2)]
    return float(np.mean(pairs)) if pairs else math.nan


# --- the demo's table ----------------------------------------------------------------------------

COLUMNS = {  # key: (header, format, what it means)
    "pc_distance": ("pc dist", ".3f", "pitch-class distance to Bach's continuation (0 same .. 1 disjoint)"),
    "same_key": ("key=prompt", ".2f", "share of pieces whose Krumhansl-Schmuckler key is the prompt's"),
    "notes_per_quarter": ("notes/qn", ".2f", "note onsets per quarter note"),
    "length": ("quarters", ".1f", "quarters measured: the shorter of the model's and Bach's continuations"),
    "length_vs_bach": ("len/Bach", ".2f", "the row's whole continuation (before the cut) over Bach's, in quarters"),
    "voices": ("voices", ".2f", "notes sounding on a beat, mean"),
    "pitch_range": ("range", ".1f", "MusPy pitch range: highest - lowest pitch, semitones"),
    "overlap": ("overlap", ".3f", "Jaccard of (onset, pitch) between pieces' continuations, 16 quarters"),
    "pc_entropy": ("pc entropy", ".2f", "MusPy pitch-class entropy, bits"),
    "scale_consistency": ("in scale", ".3f", "MusPy scale consistency"),
    "polyphony": ("polyphony", ".2f", "MusPy polyphony: pitches sounding when any does"),
    "empty_beat_rate": ("empty beats", ".3f", "MusPy empty-beat rate, from the window's start"),
}


def window(notes, start: float, end: float) -> list[Note]:
    """The notes with onsets in [start, end), each cut short at `end`."""
    return [note._replace(duration=min(note.duration, end - note.start)) for note in notes if start <= note.start < end]


def piece_stats(notes, start: float, end: float, prompt, bach) -> dict[str, float]:
    """One row's statistics for one piece: `notes` (already cut to the window [start, end)) compared with
    the piece's `prompt` (key) and `bach`'s continuation over the same window (pitch classes); MusPy's
    metrics see the notes shifted to start at 0."""
    shifted = [note._replace(start=note.start - start) for note in notes]
    return {
        "pc_distance": pitch_class_distance(notes, bach),
        "same_key": float(same_krumhansl_key(notes, prompt)),
        "notes_per_quarter": notes_per_quarter(notes, start, end),
        "length": end - start,
        "voices": voices_sounding(notes, start, end),
        "pitch_range": float(pitch_range(shifted)),
        "pc_entropy": pitch_class_entropy(shifted),
        "scale_consistency": scale_consistency(shifted),
        "polyphony": polyphony(shifted),
        "empty_beat_rate": empty_beat_rate(shifted),
    }


def other_bach(pieces: list[Continuation]) -> list[list[Note] | None]:
    """For each piece, real Bach that keeps its key but does not follow it: the continuation of the next
    piece (cyclically) whose prompt has the same mode, moved by the fewest semitones into this prompt's key
    and in time to start where this prompt ends. None where no other prompt has the same mode."""
    keys = [krumhansl_key(piece.prompt) for piece in pieces]
    result = []
    for i, (piece, key) in enumerate(zip(pieces, keys)):
        partners = [j for j in (*range(i + 1, len(pieces)), *range(i)) if key and keys[j] and keys[j][1] == key[1]]
        if not partners:
            result.append(None)
            continue
        other = pieces[partners[0]]
        shift = (key[0] - keys[partners[0]][0] + 5) % 12 - 5  # -5 .. +6 semitones
        offset = piece.prompt_end - other.prompt_end
        result.append([note._replace(pitch=note.pitch + shift, start=note.start + offset) for note in other.bach])
    return result


ROWS = {  # name: what it is
    "model": "the model's continuations",
    "Bach": "Bach's continuations",
    "other Bach": "another piece's continuation moved into the prompt's key and time (Bach not following it)",
    "prompt": "the prompts themselves",
}


def continuation_rows(pieces: list[Continuation]) -> dict[str, dict[str, float]]:
    """The demo's table: {row name (ROWS): {column (COLUMNS): mean over pieces}}; nan where a column does
    not apply (Bach's distance to itself, the prompt's key against itself, the overlap of prompts).

    The model, Bach and other Bach rows measure each piece over one window: the quarters after its prompt,
    as long as the shorter of the model's and Bach's continuations (a piece whose model continuation has no
    notes is left out of them); the prompt row measures the prompt."""
    measured = {name: [] for name in ROWS}  # name: [(statistics, the notes measured, where they start)]
    for piece, other in zip(pieces, other_bach(pieces)):
        start = piece.prompt_end
        bach_length = end_time(piece.bach, start) - start
        end = start + min(end_time(piece.model, start) - start, bach_length)
        spans = {"model": piece.model, "Bach": piece.bach, "other Bach": other} if end > start else {}
        spans = {name: (notes, start, end) for name, notes in spans.items() if notes is not None}
        spans["prompt"] = (piece.prompt, 0.0, start)
        bach = window(piece.bach, start, end)
        for name, (notes, first, last) in spans.items():
            notes_in = window(notes, first, last)
            stats = piece_stats(notes_in, first, last, piece.prompt, bach)
            whole = last - first if name == "prompt" else end_time(notes, first) - first
            stats["length_vs_bach"] = whole / bach_length if bach_length > 0 else math.nan
            measured[name].append((stats, notes_in, first))
    rows = {}
    for name, per_piece in measured.items():
        row = {key: _nanmean([stats[key] for stats, _, _ in per_piece]) for key in COLUMNS if key != "overlap"}
        kept = [(notes, first) for _, notes, first in per_piece]
        row["overlap"] = mean_overlap(*zip(*kept)) if name != "prompt" and len(kept) > 1 else math.nan
        if name == "Bach":
            row["pc_distance"] = math.nan
        if name == "prompt":
            row["same_key"] = math.nan
        rows[name] = row
    return rows


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def format_table(rows: dict[str, dict[str, float]], legend: bool = True) -> str:
    """The rows as a fixed-width text table (— where a value does not apply), with a legend below."""
    headers = [COLUMNS[key][0] for key in COLUMNS]
    widths = [max(len(h), 6) for h in headers]
    lines = [f"{'':<10} " + " ".join(f"{h:>{w}}" for h, w in zip(headers, widths))]
    for name, row in rows.items():
        cells = []
        for (key, (_, fmt, _)), width in zip(COLUMNS.items(), widths):
            value = row.get(key, math.nan)
            cells.append(f"{'—' if math.isnan(value) else format(value, fmt):>{width}}")
        lines.append(f"{name:<10} " + " ".join(cells))
    if legend:
        lines += [""] + [f"  {name}: {meaning}" for name, meaning in ROWS.items() if name in rows]
        lines += [f"  {header}: {meaning}" for header, _, meaning in COLUMNS.values()]
    return "\n".join(lines)


# --- sampling the held-out pieces ----------------------------------------------------------------

def sample_continuations(trained, pieces, bars: int = 4, max_new_tokens: int = 600, seed: int = 0,
                         **sampling) -> list[Continuation]:
    """Prime each piece ({name: token ids} or a list of token ids, BOS .. EOS) with its first `bars` bars
    and sample one continuation as long in tokens as Bach's (at most `max_new_tokens`; no EOS before, so
    that a phrase's cadence does not end the piece early; `continuation_rows` measures both over the
    quarters the shorter one lasts); `sampling`: temperature, top_k, top_p. All
    pieces are sampled together (`TrainedModel.continue_each`) from one `seed`; a piece with no notes
    after its prompt is left out."""
    from seqkit.music.generate import new_notes, opening_bars, until_eos

    tokenizer = trained.tokenizer
    named = list(pieces.items() if isinstance(pieces, Mapping) else ((str(i), ids) for i, ids in enumerate(pieces)))
    jobs = []
    for name, piece in named:
        ids = [int(t) for t in piece]
        prompt = opening_bars(tokenizer, ids, bars)
        truth = until_eos(tokenizer, ids)
        bach = new_notes(tokenizer, prompt, truth)
        if bach:
            jobs.append((name, prompt, truth, bach))
    lengths = [min(len(truth) - len(prompt) + 1, max_new_tokens) for _, prompt, truth, _ in jobs]
    samples = trained.continue_each([prompt for _, prompt, _, _ in jobs], lengths, seed=seed,
                                    min_new_tokens=[n - 1 for n in lengths], **sampling)
    result = []
    for (name, prompt, _, bach), predicted in zip(jobs, samples):
        predicted = until_eos(tokenizer, predicted)
        prompt_notes = tokenizer.decode_notes(prompt)
        result.append(Continuation(list(prompt_notes), bar_start(prompt_notes.time_signatures, bars),
                                   new_notes(tokenizer, prompt, predicted), bach, name, tuple(predicted)))
    return result
