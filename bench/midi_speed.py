"""MIDI tokenisation speed: seqkit's `tokenize_pieces` from a cold cache vs MidiTok's REMI, on one core.

    .venv/bin/python bench/midi_speed.py [--folder DIR] [--repeats 3]

Both read the same files: music21's Bach chorales, written once as .mid files by music21 into `--folder`
(kept between runs; the first run takes a few minutes). Each repeat times seqkit (a fresh, empty cache
folder; `workers=1`: one process) and then MidiTok 3.1 REMI (symusic's reader, then `tokenizer.encode`),
so both see the same machine load; the best of the repeats counts, by wall-clock and by CPU time. `main`
pins the process to one core; `midi_speed` itself uses one thread. seqkit's number includes what MidiTok
does not do: hashing each file and writing its tokens to the cache. MidiTok is a bench-only dependency
(`pip install -e ".[bench]"`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_FOLDER = Path.home() / ".cache" / "seqkit" / "bench-bach-midi"


def bach_midi_files(folder=DEFAULT_FOLDER, progress: bool = True) -> list[Path]:
    """The built-in Bach chorales as .mid files written by music21, writing only those not there yet."""
    from music21 import converter

    from seqkit.io import atomic_path
    from seqkit.music.corpus import bach_pieces

    folder = Path(folder)
    files = []
    for i, piece in enumerate(bach_pieces()):
        path = folder / f"{Path(piece).stem}.mid"
        if not path.exists():
            if progress:
                print(f"\rwriting {path.name} ({i + 1}/{len(bach_pieces())})", end="", file=sys.stderr)
            score = converter.parse(piece, forceSource=True)
            with atomic_path(path) as tmp:
                score.write("midi", fp=str(tmp))
        files.append(path)
    if progress:
        print(file=sys.stderr)
    return files


def miditok_remi(grid: int = 12, programs: bool = False):
    """MidiTok's REMI with the settings closest to seqkit's MidiTokenizer(grid=grid, programs=programs):
    onsets and durations on `grid` steps per quarter up to 8 quarters, time signatures, MidiTok's widest
    pitch range (0, 127), no velocity or tempo tokens."""
    import miditok

    config = miditok.TokenizerConfig(pitch_range=(0, 127), beat_res={(0, 8): grid}, use_velocities=False,
                                     use_time_signatures=True, use_programs=programs,
                                     one_token_stream_for_programs=True, special_tokens=["PAD", "BOS", "EOS"])
    return miditok.REMI(config)


class Clock:
    """Wall and CPU seconds of a block: the machine may be shared, and CPU time is what other load disturbs
    least."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def seqkit_run(files, tokenizer, cache_root=None) -> tuple[Clock, int]:
    """(time, tokens) of `tokenize_pieces(files, tokenizer, <empty cache under cache_root>, workers=1)`."""
    from seqkit.music.corpus import tokenize_pieces

    cache = Path(tempfile.mkdtemp(prefix="seqkit-midi-speed-", dir=cache_root))
    try:
        with Clock() as clock:
            sequences, skipped = tokenize_pieces(files, tokenizer, cache, workers=1, progress=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if skipped:
        raise RuntimeError(f"seqkit skipped {len(skipped)} files, e.g. {skipped[0]}")
    return clock, sum(len(s) for s in sequences)


def miditok_run(files, tokenizer) -> tuple[Clock, int]:
    """(time, tokens) of MidiTok encoding each file read with symusic."""
    from symusic import Score

    tokens = 0
    with Clock() as clock:
        for path in files:
            encoded = tokenizer.encode(Score(path))
            tokens += sum(len(seq.ids) for seq in encoded) if isinstance(encoded, list) else len(encoded.ids)
    return clock, tokens


def midi_speed(files, repeats: int = 3, grid: int = 12, programs: bool = False, cache_root=None) -> dict:
    """files/s of seqkit (cold cache, one worker) and MidiTok REMI, runs interleaved, best of `repeats`:
    by wall-clock time and by CPU time of this process. seqkit's caches go to fresh folders under
    `cache_root` (default: the system's temporary folder): creating a file costs from ~15 µs to ~0.8 ms
    depending on the file system, a large part of seqkit's time per piece."""
    from seqkit.music.tokenizer import MidiTokenizer

    ours, theirs = MidiTokenizer(grid=grid, programs=programs), miditok_remi(grid, programs)
    runs = {"seqkit": [], "miditok": []}
    for _ in range(repeats):
        runs["seqkit"].append(seqkit_run(files, ours, cache_root))
        runs["miditok"].append(miditok_run(files, theirs))
    result = {"files": len(files), "grid": grid, "programs": programs}
    for name, timed in runs.items():
        result[f"{name}_files_per_s"] = len(files) / min(clock.wall for clock, _ in timed)
        result[f"{name}_files_per_cpu_s"] = len(files) / min(clock.cpu for clock, _ in timed)
        result[f"{name}_tokens"] = timed[0][1]
    result["ratio"] = result["seqkit_files_per_s"] / result["miditok_files_per_s"]
    result["cpu_ratio"] = result["seqkit_files_per_cpu_s"] / result["miditok_files_per_cpu_s"]
    return result


def report(result: dict) -> str:
    line = "  {:<48} {:7.1f} files/s ({:7.1f} per CPU second), {:,} tokens"
    return "\n".join([
        f"{result['files']} Bach chorales as .mid, grid {result['grid']}, programs={result['programs']}, one core:",
        line.format("seqkit tokenize_pieces (cold cache, workers=1):", result["seqkit_files_per_s"],
                    result["seqkit_files_per_cpu_s"], result["seqkit_tokens"]),
        line.format("MidiTok 3.1 REMI (symusic read + encode):", result["miditok_files_per_s"],
                    result["miditok_files_per_cpu_s"], result["miditok_tokens"]),
        f"  seqkit / MidiTok: {result['ratio']:.2f}x (wall), {result['cpu_ratio']:.2f}x (CPU)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER), help="where the chorales' .mid files are kept")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grid", type=int, default=12)
    parser.add_argument("--cache-root", default=None, help="where seqkit's cold caches go (default: temp folder)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    files = bach_midi_files(args.folder)
    for programs in (False, True):
        print(report(midi_speed(files, args.repeats, args.grid, programs, args.cache_root)))


if __name__ == "__main__":
    main()
