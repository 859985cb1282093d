"""Music data sets: the built-in Bach chorales, folders of files, cached parallel tokenisation, transposition."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seqkit.io import atomic_path
from seqkit.music.near_copies import musicxml_part_pitches
from seqkit.music.tokenizer import MIDI_SUFFIXES, SCORE_SUFFIXES, MidiTokenizer

CACHE_FORMAT = 2  # bump when the same settings would tokenise differently (2: symusic reads MIDI files)


# --- pieces --------------------------------------------------------------------------------------

def bach_pieces() -> list[str]:
    """music21's four-part Bach chorales, each once (363): sorted paths of its MusicXML files.

    The corpus also holds instrumental settings with more parts, and a few chorales twice under two BWV
    numbers; the three .krn chorales repeat .mxl ones with their repeats unexpanded, so only MusicXML
    counts. Pieces are matched by their pitches, read straight from the XML: a music21 parse of every
    file would take ~40 s on two cores, this ~0.3 s."""
    return list(_bach_pieces())


@functools.cache
def _bach_pieces() -> tuple[str, ...]:
    from music21 import corpus

    seen, pieces = set(), []
    for path in sorted(str(p) for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml")):
        parts = musicxml_part_pitches(Path(path))
        if len(parts) == 4 and parts not in seen:
            seen.add(parts)
            pieces.append(path)
    return tuple(pieces)


def music_files(folder_or_file) -> list[Path]:
    """A music file, or every music file under a folder (recursively), sorted."""
    path = Path(folder_or_file)
    suffixes = MIDI_SUFFIXES + SCORE_SUFFIXES
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise ValueError(f"{path}: not a music file; use one of {', '.join(suffixes)}")
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise ValueError(f"{path}: no music files ({', '.join(suffixes)}) in this folder or below")
    return files


def split_pieces(pieces, seed: int = 0, val: float = 0.1, test: float = 0.1, groups=None) -> dict[str, list]:
    """Split whole pieces (never positions within one) into train/val/test with a seeded shuffle, each
    group of `groups` (lists of pieces, e.g. `near_copy_groups`; a piece in none is its own group) on one
    side: the groups, shuffled, fill val then test up to their share of pieces where they fit, and the
    rest train (the smallest of those goes to val or test if none fitted). With no groups this is a plain
    shuffle of the pieces.

    The result depends only on the pieces, the groups and the seed, not on their order. A non-zero
    fraction gets at least one piece."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val={val} and test={test} must be fractions in [0, 1) that add up to less than 1")
    pieces = sorted(pieces, key=str)
    n_val, n_test = (max(1, round(f * len(pieces))) if f > 0 else 0 for f in (val, test))
    if n_val + n_test >= len(pieces):
        raise ValueError(f"{len(pieces)} pieces are too few for val={val}, test={test} and a training set; "
                         "add pieces or set val/test to 0")
    grouped = {str(piece) for group in groups or () for piece in group}
    shuffled = sorted([sorted(group, key=str) for group in groups or ()] +
                      [[piece] for piece in pieces if str(piece) not in grouped], key=lambda g: str(g[0]))
    random.Random(seed).shuffle(shuffled)
    splits = {"val": [], "test": [], "train": []}
    size = {"val": n_val, "test": n_test}
    for group in shuffled:
        name = next((n for n in ("val", "test") if sum(map(len, splits[n])) + len(group) <= size[n]), "train")
        splits[name].append(group)
    for name in ("val", "test"):
        if size[name] and not splits[name] and len(splits["train"]) > 1:  # none fitted: the smallest goes
            smallest = min(range(len(splits["train"])), key=lambda i: len(splits["train"][i]))
            splits[name].append(splits["train"].pop(smallest))
    splits = {name: [piece for group in kept for piece in group] for name, kept in splits.items()}
    if not splits["train"]:
        raise ValueError(f"{len(pieces)} pieces in {len(shuffled)} groups of near-copies are too few for "
                         f"val={val}, test={test} and a training set; add pieces or set val/test to 0")
    return {"train": splits["train"], "val": splits["val"], "test": splits["test"]}


# --- tokenising ----------------------------------------------------------------------------------

def tokenize_pieces(pieces, tokenizer: MidiTokenizer, cache_dir, workers: int | None = None,
                    progress: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Token ids of each piece, in order, and the pieces skipped because they could not be read or hold no
    notes (each named in a one-line warning on stderr).

    Each piece's result is cached under `cache_dir` by a hash of its bytes and the tokenizer settings, so
    only new or changed files are parsed, in `workers` processes (default: every core)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = json.dumps([CACHE_FORMAT, tokenizer.to_dict()], sort_keys=True).encode()
    keys = [hashlib.sha256(settings + Path(piece).read_bytes()).hexdigest() for piece in pieces]
    results = {key: _cached(cache_dir, key) for key in keys}
    todo = [(str(piece), key) for piece, key in zip(pieces, keys) if results[key] is None]
    todo = list({key: (piece, key) for piece, key in todo}.values())  # identical files: parse one
    workers = min(workers or _cpu_count(), len(todo)) or 1
    encode = functools.partial(_encode_and_cache, tokenizer, cache_dir)
    with tqdm(total=len(todo), desc="tokenizing", unit="piece", file=sys.stderr,
              disable=not progress or not todo) as bar:
        for key, result in _map(encode, todo, workers):
            results[key] = result
            bar.update()
    sequences, skipped = [], []
    for piece, key in zip(pieces, keys):
        if isinstance(results[key], str):
            tqdm.write(f"warning: skipped {results[key]}", file=sys.stderr)
            skipped.append(str(piece))
        else:
            sequences.append(results[key])
    return sequences, skipped


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _map(function, items: list, workers: int):
    if workers == 1:  # no process start-up for a handful of files
        yield from map(function, items)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(function, items, chunksize=max(1, len(items) // (workers * 8)))


def _cached(cache_dir: Path, key: str) -> np.ndarray | str | None:
    """A cached piece: its token ids, the reason it was skipped, or None if not cached yet."""
    tokens, failure = cache_dir / f"{key}.npy", cache_dir / f"{key}.skip"
    if tokens.exists():
        return np.load(tokens)
    if failure.exists():
        return failure.read_text()
    return None


def _encode_and_cache(tokenizer: MidiTokenizer, cache_dir: Path, job: tuple[str, str]):
    path, key = job
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
    try:
        ids = np.asarray(tokenizer.encode_file(path), dtype=dtype)
    except ValueError as error:
        with atomic_path(cache_dir / f"{key}.skip") as tmp:
            tmp.write_text(str(error))
        return key, str(error)
    with atomic_path(cache_dir / f"{key}.npy") as tmp:
        with open(tmp, "wb") as f:  # np.save on a path would append ".npy" to the temporary name
            np.save(f, ids)
    return key, ids


# --- transposition -------------------------------------------------------------------------------

def augment_transpositions(ids_list, tokenizer: MidiTokenizer, low: int = -5, high: int = 6) -> list[np.ndarray]:
    """Extra training sequences: each one transposed by every shift in low..high except 0 that keeps all
    its pitches inside the tokenizer's pitch range. Only for training data: val/test stay as written."""
    first_pitch = tokenizer.ids["Pitch", tokenizer.settings.pitch_low]
    last_pitch = tokenizer.ids["Pitch", tokenizer.settings.pitch_high]  # Pitch ids are consecutive
    extra = []
    for ids in ids_list:
        ids = np.asarray(ids)
        is_pitch = (ids >= first_pitch) & (ids <= last_pitch)
        if not is_pitch.any():
            continue
        lowest, highest = int(ids[is_pitch].min()), int(ids[is_pitch].max())
        for shift in range(low, high + 1):
            if shift != 0 and lowest + shift >= first_pitch and highest + shift <= last_pitch:
                moved = ids.astype(np.int64)
                moved[is_pitch] += shift
                extra.append(moved.astype(ids.dtype))
    return extra
