"""MusPy's metrics (muspy.metrics, 0.5), ported exactly for note lists (`Note`s, times in quarter notes).

A note list reads as a MusPy `Music` of `resolution` ticks per quarter would hold it: onset and duration
each rounded to ticks, the tracks taken together (as MusPy does). Times that matter (the empty-beat rate)
count from 0; the continuation table shifts a window's notes to start there. tests/test_music_stats.py
checks each against MusPy itself.
"""
from __future__ import annotations

import math

import numpy as np

RESOLUTION = 24  # MusPy's default ticks per quarter; any multiple of the notes' grid gives the same values


def pitch_range(notes) -> int:
    """muspy.pitch_range: highest minus lowest pitch in semitones; 0 without notes."""
    pitches = [note.pitch for note in notes]
    return max(pitches) - min(pitches) if pitches else 0


def pitch_class_entropy(notes) -> float:
    """muspy.pitch_class_entropy: −Σ p log2 p over the 12 pitch classes counted by notes (not duration);
    0 (one pitch class) .. log2 12 ≈ 3.585 (all equally often); nan without notes."""
    counts = np.bincount([note.pitch % 12 for note in notes], minlength=12).astype(float)
    if not counts.sum():
        return math.nan
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one pitch class is 0, not -0


def _scale(tonic: int, minor: bool) -> np.ndarray:
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)  # natural minor, as MusPy
    mask = np.zeros(12, bool)
    mask[[(tonic + step) % 12 for step in steps]] = True
    return mask


def scale_consistency(notes) -> float:
    """muspy.scale_consistency: the largest share of notes (counted, not timed) inside one major or
    natural-minor scale, over all 24; nan without notes."""
    counts = np.bincount([note.pitch % 12 for note in notes], minlength=12)
    if not counts.sum():
        return math.nan
    best = max(counts[_scale(tonic, minor)].sum() for tonic in range(12) for minor in (False, True))
    return float(best / counts.sum())


def _ticks(notes, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(onset, end) of each note in ticks, as a MusPy Note holds them: time and duration rounded."""
    start = np.array([round(note.start * resolution) for note in notes], dtype=np.int64)
    duration = np.array([round(note.duration * resolution) for note in notes], dtype=np.int64)
    return start, start + duration


def polyphony(notes, resolution: int = RESOLUTION) -> float:
    """muspy.polyphony: the mean number of pitches sounding per tick, over the ticks where at least one
    does (a note sounds from its onset tick up to, not including, its end tick); nan without notes."""
    start, end = _ticks(notes, resolution)
    if not len(start) or end.max() < 1:
        return math.nan
    roll = np.zeros((end.max(), 128), bool)
    for note, first, last in zip(notes, start, end):
        roll[first:last, note.pitch] = True
    sounding = roll.sum(1)
    return float(sounding[sounding > 0].mean()) if sounding.any() else math.nan


def empty_beat_rate(notes, resolution: int = RESOLUTION) -> float:
    """muspy.empty_beat_rate: the share of the beats 0, 1, ... up to the one holding the last note's end
    in which no note is played, where a note plays in every beat from its onset's to its end's, both
    included (notes at [0, 1) and [2, 2.5) leave no beat empty); nan if nothing sounds after 0."""
    start, end = _ticks(notes, resolution)
    length = int(end.max()) if len(end) else 0
    if length < 1:
        return math.nan
    played = np.zeros(length // resolution + 1, bool)
    for first, last in zip(start // resolution, end // resolution):
        played[first:last + 1] = True
    return float(1 - played.mean())
