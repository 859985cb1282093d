"""Near-copies: the same melody or harmonization in another version, key or voicing. Found by the runs of
melodic intervals that the parts of two pieces share, so that a split keeps them on one side.

Each part of a piece (a score part, a MIDI track) becomes its pitches in order, repeated pitches merged
(ties and re-struck notes differ between editions), then its runs of `RUN` consecutive intervals: blind
to key, rhythm and which part holds the tune. Two pieces are near-copies when at least `SHARED` of the
runs of one part of either are found somewhere in the other. `bench/near_copies.py` lists what this
groups in music21's Bach chorales and why the threshold sits where it does.
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from seqkit.io import atomic_path

RUN = 8          # intervals in a run (nine notes)
SHARED = 0.4     # share of one part's runs found in the other piece that makes two pieces near-copies
PARTS_FORMAT = 1  # bump when the same file would give other parts
SPLIT_VERSION = 2  # 2: near-copies on one side. Bump when the same pieces would split otherwise (RUN, SHARED)

_PART = re.compile(rb"<part[\s>]")
_STEP_SEMITONES = {b"C": 0, b"D": 2, b"E": 4, b"F": 5, b"G": 7, b"A": 9, b"B": 11}
_PITCH = re.compile(rb"<step>\s*([A-G])\s*</step>\s*(?:<alter>\s*([-+.\d]+)\s*</alter>\s*)?<octave>\s*(\d+)")
_MUSICXML = (".xml", ".musicxml", ".mxl")


def part_pitches(path) -> tuple[tuple[int, ...], ...]:
    """Per part (score part, or pitched MIDI track), its pitches in order of onset, low to high within a
    chord. MusicXML is read straight from the XML (~1 ms a chorale), MIDI with symusic, other scores
    with music21."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _MUSICXML:
        return musicxml_part_pitches(path)
    if suffix in (".mid", ".midi"):
        from symusic import Score

        tracks = [track.notes.numpy() for track in Score.from_midi(path.read_bytes()).tracks if not track.is_drum]
        return tuple(tuple(notes["pitch"][np.lexsort((notes["pitch"], notes["time"]))].tolist()) for notes in tracks)
    from seqkit.music.score_file import read_score

    parts = defaultdict(list)
    for note in read_score(path):  # sorted by start, then part, then pitch
        parts[note.program].append(note.pitch)
    return tuple(tuple(parts[program]) for program in sorted(parts))


def musicxml_part_pitches(path: Path) -> tuple[tuple[int, ...], ...]:
    """Per part, its sequence of pitches (as sounding, whatever the spelling), read straight from the XML:
    a fingerprint of the music, blind to layout, titles and how a file encodes durations."""
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as archive:
            container = archive.read("META-INF/container.xml")
            root_file = re.search(rb'full-path="([^"]+)"', container).group(1).decode()
            xml = archive.read(root_file)
    else:
        xml = path.read_bytes()
    return tuple(tuple(_STEP_SEMITONES[step] + round(float(alter or 0)) + 12 * int(octave)
                       for step, alter, octave in _PITCH.findall(part))
                 for part in _PART.split(xml)[1:])


def interval_runs(pitches, length: int = RUN) -> set[tuple[int, ...]]:
    """The distinct runs of `length` consecutive intervals of a part, repeated pitches merged first."""
    merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    steps = tuple(b - a for a, b in zip(merged, merged[1:]))
    return {steps[i:i + length] for i in range(len(steps) - length + 1)}


def shared_runs(pieces_parts: dict[str, list[set]]) -> dict[tuple[str, str], float]:
    """For each ordered pair (a, b) of pieces that share any run: the largest share of one part of a's
    runs found in b's parts."""
    holders = defaultdict(set)  # run -> pieces holding it
    for piece, parts in pieces_parts.items():
        for runs in parts:
            for run in runs:
                holders[run].add(piece)
    shares = {}
    for piece, parts in pieces_parts.items():
        for runs in parts:
            found = Counter(other for run in runs for other in holders[run] if other != piece)
            for other, count in found.items():
                shares[piece, other] = max(shares.get((piece, other), 0.0), count / len(runs))
    return shares


def near_copy_groups(pieces, cache_dir=None, shared: float = SHARED) -> list[list[str]]:
    """The pieces as groups of near-copies (a group is closed under "near-copy of"; most are single
    pieces), each sorted, in order of their first piece. Parts are cached under `cache_dir`, if given."""
    pieces = [str(p) for p in pieces]
    runs = {piece: [interval_runs(part) for part in _cached_parts(piece, cache_dir)] for piece in pieces}
    parent = {piece: piece for piece in pieces}

    def root(piece):
        while parent[piece] != piece:
            parent[piece] = parent[parent[piece]]
            piece = parent[piece]
        return piece

    for (a, b), share in shared_runs({p: [r for r in parts if r] for p, parts in runs.items()}).items():
        if share >= shared:
            parent[root(a)] = root(b)
    groups = defaultdict(list)
    for piece in pieces:
        groups[root(piece)].append(piece)
    return sorted((sorted(group) for group in groups.values()), key=lambda group: group[0])


def _cached_parts(piece: str, cache_dir) -> tuple:
    if cache_dir is None or Path(piece).suffix.lower() in _MUSICXML + (".mid", ".midi"):  # fast to read again
        return part_pitches(piece)
    path = Path(piece)
    key = hashlib.sha256(f"parts{PARTS_FORMAT}".encode() + path.read_bytes()).hexdigest()
    cached = Path(cache_dir) / f"{key}.parts.json"
    if cached.exists():
        return tuple(map(tuple, json.loads(cached.read_text())))
    parts = part_pitches(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        tmp.write_text(json.dumps(parts))
    return parts
