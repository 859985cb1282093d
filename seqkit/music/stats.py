"""Statistics of continuations: does a model's music follow its prompt the way Bach's does?

Small functions over note lists (`Note`s, times in quarter notes), then the demo's table: the model's
continuations, Bach's real ones and the prompts themselves, averaged over held-out pieces.

Definitions (each function's docstring gives its formula):

- pitch-class distance: half the L1 distance of two duration-weighted pitch-class histograms, each summing
  to 1 (0: the same pitch classes in the same proportions, 1: none in common);
- key: Krumhansl-Schmuckler, as music21's `analyze('key')` (the same profiles and correlation), on numbers;
- notes per quarter, voices sounding (mean number of notes sounding on each beat), pitch range;
- overlap: Jaccard index of the (onset in sixteenths, pitch) sets of two continuations over the 16 quarters
  after the later of their prompts ends; near 0 when continuations follow their own prompts;
- MusPy's names and formulas: pitch-class entropy, scale consistency, polyphony, empty-beat rate.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from itertools import combinations
from typing import NamedTuple

import numpy as np

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


def pitch_range(notes) -> int:
    """Highest minus lowest pitch in semitones (MusPy's pitch_range); 0 without notes."""
    pitches = [note.pitch for note in notes]
    return max(pitches) - min(pitches) if pitches else 0


def pitch_class_entropy(notes) -> float:
    """MusPy's pitch_class_entropy: −Σ p log2 p over the 12 pitch classes counted by notes (not duration);
    0 (one pitch class) .. log2 12 ≈ 3.585 (all equally often); nan without notes."""
    counts = np.bincount([note.pitch % 12 for note in notes], minlength=12).astype(float)
    if not counts.sum():
        return math.nan
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one pitch class is 0, not -0


def _scale(tonic: int, mode: str) -> np.ndarray:
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == MAJOR else (0, 2, 3, 5, 7, 8, 10)  # natural minor, as MusPy
    mask = np.zeros(12, bool)
    mask[[(tonic + step) % 12 for step in steps]] = True
    return mask


def scale_consistency(notes) -> float:
    """MusPy's scale_consistency: the largest share of notes (counted, not timed) inside one major or
    natural-minor scale, over all 24; nan without notes."""
    counts = np.bincount([note.pitch % 12 for note in notes], minlength=12)
    if not counts.sum():
        return math.nan
    best = max(counts[_scale(tonic, mode)].sum() for tonic in range(12) for mode in (MAJOR, MINOR))
    return float(best / counts.sum())


@functools.cache
def _key_profiles() -> dict[str, np.ndarray]:
    from music21.analysis.discrete import KrumhanslSchmuckler

    analysis = KrumhanslSchmuckler()
    return {mode: np.array(analysis.getWeights(mode)) for mode in (MAJOR, MINOR)}


def estimate_key(notes) -> tuple[int, str] | None:
    """(tonic pitch class, "major" | "minor") by Krumhansl-Schmuckler: the key whose profile (music21's
    weights, rotated to the tonic) correlates best with the duration-weighted pitch-class histogram —
    what music21's `stream.analyze('key')` computes, without building a stream. None without notes."""
    return key_of_histogram(pitch_class_histogram(notes))


def key_of_histogram(histogram: np.ndarray) -> tuple[int, str] | None:
    """`estimate_key` of a (12,) pitch-class histogram (any scale); None if it is flat."""
    if not histogram.any() or np.ptp(histogram) == 0:
        return None
    best, best_r = None, -math.inf
    for mode, profile in _key_profiles().items():
        for tonic in range(12):
            r = np.corrcoef(np.roll(profile, tonic), histogram)[0, 1]
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def same_key(a, b) -> bool:
    """Whether two note lists have the same estimated key (tonic and mode); False if either has none."""
    key_a = estimate_key(a)
    return key_a is not None and key_a == estimate_key(b)


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


def polyphony(notes, grid: int = 4) -> float:
    """MusPy's polyphony: the mean number of pitches sounding per time step (1/grid quarter), over the
    steps where at least one does; nan without notes."""
    if not notes:
        return math.nan
    steps = math.ceil(end_time(notes) * grid)
    roll = np.zeros((steps + 1, 128), bool)
    for note in notes:
        first = round(note.start * grid)
        roll[first:max(round((note.start + note.duration) * grid), first + 1), note.pitch] = True
    sounding = roll.sum(1)
    sounding = sounding[sounding > 0]
    return float(sounding.mean())


def empty_beat_rate(notes, start: float = 0.0, end: float | None = None) -> float:
    """MusPy's empty_beat_rate: the share of beats [b, b+1) in [start, end) during which no note sounds;
    `end` defaults to the last note's end; nan for an empty span."""
    end = end_time(notes, start) if end is None else end
    beats = np.arange(math.floor(start), math.ceil(end), dtype=float)
    if not len(beats):
        return math.nan
    busy = np.zeros(len(beats), bool)
    for note in notes:
        busy |= (note.start < beats + 1) & (beats < note.start + note.duration)
    return float(1 - busy.mean())


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
    "same_key": ("key=prompt", ".2f", "share of pieces in the prompt's key (Krumhansl-Schmuckler)"),
    "notes_per_quarter": ("notes/qn", ".2f", "note onsets per quarter note"),
    "length": ("quarters", ".1f", "length in quarter notes"),
    "length_vs_bach": ("len/Bach", ".2f", "length over the length of Bach's continuation"),
    "voices": ("voices", ".2f", "notes sounding on a beat, mean"),
    "pitch_range": ("range", ".1f", "highest - lowest pitch, semitones"),
    "overlap": ("overlap", ".3f", "Jaccard of (onset, pitch) between pieces' continuations, 16 quarters"),
    "pc_entropy": ("pc entropy", ".2f", "MusPy pitch-class entropy, bits"),
    "scale_consistency": ("in scale", ".3f", "MusPy scale consistency"),
    "polyphony": ("polyphony", ".2f", "MusPy polyphony: pitches sounding when any does"),
    "empty_beat_rate": ("empty beats", ".3f", "MusPy empty-beat rate"),
}


def piece_stats(notes, start: float, end: float | None, prompt, bach) -> dict[str, float]:
    """One row's statistics for one piece: `notes` spanning [start, end) (end: their last note's end),
    compared with the piece's `prompt` (key) and `bach`'s continuation (pitch classes)."""
    end = end_time(notes, start) if end is None else end
    return {
        "pc_distance": pitch_class_distance(notes, bach),
        "same_key": float(same_key(notes, prompt)),
        "notes_per_quarter": notes_per_quarter(notes, start, end),
        "length": max(end - start, 0.0),
        "voices": voices_sounding(notes, start, end),
        "pitch_range": float(pitch_range(notes)),
        "pc_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "polyphony": polyphony(notes),
        "empty_beat_rate": empty_beat_rate(notes, start, end),
    }


def other_bach(pieces: list[Continuation]) -> list[list[Note] | None]:
    """For each piece, real Bach that keeps its key but does not follow it: the continuation of the next
    piece (cyclically) whose prompt has the same mode, moved by the fewest semitones into this prompt's key
    and in time to start where this prompt ends. None where no other prompt has the same mode."""
    keys = [estimate_key(piece.prompt) for piece in pieces]
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
    not apply (Bach's distance to itself, the prompt's key against itself, the overlap of prompts)."""
    notes_of = {"model": [p.model for p in pieces], "Bach": [p.bach for p in pieces],
                "other Bach": other_bach(pieces), "prompt": [p.prompt for p in pieces]}
    rows = {}
    for name, all_notes in notes_of.items():
        per_piece, kept = [], []
        for piece, notes in zip(pieces, all_notes):
            if notes is None:
                continue
            start, end = (0.0, piece.prompt_end) if name == "prompt" else (piece.prompt_end, None)
            stats = piece_stats(notes, start, end, piece.prompt, piece.bach)
            bach_length = end_time(piece.bach, piece.prompt_end) - piece.prompt_end
            stats["length_vs_bach"] = stats["length"] / bach_length if bach_length > 0 else math.nan
            per_piece.append(stats)
            kept.append((notes, piece.prompt_end))
        row = {key: _nanmean([stats[key] for stats in per_piece]) for key in COLUMNS if key != "overlap"}
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
    that a phrase's cadence does not end the piece early); `sampling`: temperature, top_k, top_p. All
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
