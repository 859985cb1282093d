"""seqkit benchmarks: prints tables, asserts nothing. `make bench` runs it; `--quick` for a smoke run.

1. every family on a text corpus (char level) on one fixed budget: val bits/char, train tokens/s, sampling tokens/s
2. `seqkit train` against a plain PyTorch loop, whole runs, same model, batches and schedule (transformer, lstm);
   with --nanogpt DIR (`make bench NANOGPT=DIR`), also against nanoGPT's own train.py on its CPU recipe
3. music tokenisation of the `bach` built-in, cold and warm cache; .mid files against MidiTok on one core
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def text_config(source: str, family: str, steps: int, out: Path, cache: Path):
    from seqkit.presets import preset

    return preset("bench", family, source=source, cache_dir=str(cache), max_steps=steps, val_every=steps,
                  out=str(out))


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:,.3f}" if isinstance(v, float) and v < 100 else
                                f"{v:,.0f}" if isinstance(v, (int, float)) else str(v) for v in row) + " |")
    sys.stdout.flush()


def bench_families(source: str, steps: int, work: Path) -> None:
    import seqkit
    from seqkit.compare import sampling_speed
    from seqkit.models import FAMILIES

    rows = []
    for family in FAMILIES:
        start = time.perf_counter()
        run_dir = seqkit.train(text_config(source, family, steps, work / family, work / "cache"))
        wall = time.perf_counter() - start
        trained = seqkit.load(run_dir)
        summary = trained.info["summary"]
        rows.append([family, trained.num_parameters, summary["best_val_bits_per_char"],
                     summary["train_tokens_per_second"], sampling_speed(trained), wall])
    table(f"Families on {Path(source).name}, char level, {steps} steps of 32 x 64 tokens (CPU, {torch.get_num_threads()} threads)",
          ["family", "parameters", "val bits/char", "train tokens/s", "sampling tokens/s (batch 1)", "wall s"], rows)


def bench_plain_loop(source: str, quick: bool, nanogpt: Path | None = None) -> None:
    """Whole runs (validation and checkpoints included) of `seqkit train` against a plain PyTorch loop over
    the same model, batches and schedule: the transformer in nanoGPT's CPU shape, and the LSTM; with
    `nanogpt` (a checkout of it), also against nanoGPT's own train.py."""
    from plain_loop import against_nanogpt, compare

    rows = []
    for family, steps in (("transformer", 30 if quick else 2000), ("lstm", 20 if quick else 800)):
        [row] = compare(steps, family=family, source=source)
        plain, ours = row["plain"], row["seqkit"]
        rows.append([family, steps, plain["seconds"], ours["seconds"], row["ratio"], row["cpu_ratio"],
                     plain["val_loss"], ours["val_loss"]])
    table("`seqkit train` vs a plain PyTorch loop, whole runs (same model, batches, schedule, validation every 250 "
          "steps and a checkpoint each time; CPU). Target: ratio <= 1.0",
          ["family", "steps", "plain s", "seqkit s", "ratio", "CPU-time ratio", "plain val loss", "seqkit val loss"], rows)
    if nanogpt:
        steps = 30 if quick else 2000
        r = against_nanogpt(nanogpt, steps)
        table("`seqkit train` vs nanoGPT's train.py (its README's CPU recipe), whole processes side by side, one "
              "thread each. Target: ratio <= 1.0", ["steps", "nanoGPT s", "seqkit s", "ratio", "nanoGPT val loss",
                                                   "seqkit val loss"],
              [[steps, r["nanogpt"], r["seqkit"], r["ratio"], r["nanogpt_val"], r["seqkit_val"]]])


def bench_music(work: Path) -> None:
    from seqkit.music.corpus import bach_pieces, tokenize_pieces
    from seqkit.music.tokenizer import MidiTokenizer

    pieces, tokenizer, cache = bach_pieces(), MidiTokenizer(), work / "music-cache"
    rows = []
    for label in ("cold", "warm"):
        start = time.perf_counter()
        sequences, skipped = tokenize_pieces(pieces, tokenizer, cache, progress=False)
        seconds = time.perf_counter() - start
        rows.append([label, len(sequences), len(skipped), seconds, len(pieces) / seconds])
    table(f"Music tokenisation (`bach` built-in from MusicXML with music21, {os.cpu_count()} cores)",
          ["run", "pieces", "skipped", "seconds", "files/s"], rows)


def bench_midi_files(quick: bool) -> None:
    """`seqkit tokenize FOLDER --workers 1` against MidiTok's REMI on the same .mid files and core."""
    from midi_speed import bach_midi_files, midi_speed, report

    files = bach_midi_files()
    print("\n## MIDI files on one core: seqkit vs MidiTok\n")
    print(report(midi_speed(files[:40] if quick else files, repeats=1 if quick else 3)))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check the script runs")
    parser.add_argument("--only", choices=["families", "overhead", "music"], default=None)
    parser.add_argument("--nanogpt", type=Path, help="a checkout of karpathy/nanoGPT to run against (optional)")
    args = parser.parse_args()
    source = str(SHAKESPEARE) if SHAKESPEARE.exists() else "pydoc"
    steps = 20 if args.quick else 300
    work = Path(tempfile.mkdtemp(prefix="seqkit-bench-"))
    try:
        if args.only in (None, "families"):
            bench_families(source, steps, work)
        if args.only in (None, "overhead"):
            bench_plain_loop(source, args.quick, args.nanogpt)
        if args.only in (None, "music"):
            bench_music(work)
            bench_midi_files(args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
