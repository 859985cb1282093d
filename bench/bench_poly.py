"""Polyphonic music benchmarks: test NLL per frame (nats, summed over the 88 keys) of frame models trained
with seqkit's frame defaults, i.e. what `seqkit train SONGS --tokenizer pianoroll --model FAMILY
[--set model.frame_head=nade]` trains, family x head, with published figures beside them. Prints a
markdown table; asserts nothing. `make bench-poly`.

Sets: MuseData and Piano-midi.de (the files in --data-dir, ../shared/data/poly), JSB Chorales and
Nottingham where their files are there too, and `chorales`: music21's Bach chorales exported as the
published JSB set was made, one frame per quarter note holding the notes sounding at its start
(`seqkit export-frames bach OUT --frames-per-quarter 1 --sampling start`; other editions and another split,
so the JSB figures beside it are a guide, not a match). A set whose file is missing is skipped with a note.
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

from seqkit.music.near_copies import SPLIT_VERSION

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "poly"
CHORALES = ROOT / "data" / "cache" / "bench" / f"chorales_q_start_split{SPLIT_VERSION}.npz"  # a new split: a new file

# set -> file names tried in --data-dir (chorales: exported from the `bach` built-in instead)
SET_FILES = {
    "jsb": ("JSB_Chorales.mat", "JSB Chorales.pickle", "JSB_Chorales.pickle", "jsb.pickle", "JSB_Chorales.npz"),
    "nottingham": ("Nottingham.mat", "Nottingham.pickle", "Nottingham.npz"),
    "musedata": ("MuseData.mat", "MuseData.pickle", "MuseData.npz"),
    "piano_midi": ("Piano_midi.mat", "Piano-midi.de.pickle", "Piano_midi.pickle", "Piano_midi.npz"),
    "chorales": (),
}
BAI = "Bai et al. 2018"
BL = "Boulanger-Lewandowski et al. 2012"
JSB_BERNOULLI = f"RNN 8.91, LSTM 8.45, GRU 8.43, TCN 8.10 ({BAI})"
JSB_NADE = f"RNN-NADE 5.56 ({BL})"
PUBLISHED = {  # (set, head) -> test NLL per frame reported in the literature
    ("jsb", "bernoulli"): JSB_BERNOULLI, ("jsb", "nade"): JSB_NADE,
    ("chorales", "bernoulli"): f"JSB: {JSB_BERNOULLI}", ("chorales", "nade"): f"JSB: {JSB_NADE}",
    ("nottingham", "bernoulli"): f"LSTM 3.29, TCN 3.07 ({BAI})", ("nottingham", "nade"): f"RNN-NADE 2.31 ({BL})",
    ("musedata", "nade"): f"RNN-NADE 5.60 ({BL})", ("piano_midi", "nade"): f"RNN-NADE 7.05 ({BL})",
}


def set_path(name: str, data_dir: Path, chorales: Path) -> Path | None:
    """The benchmark file of set `name`, or None (with a printed note) when it is not here."""
    if name == "chorales":
        if not chorales.exists():
            from seqkit.music.frame_data import export_frames
            try:
                export_frames("bach", chorales, frames_per_quarter=1, cache_dir=str(ROOT / "data" / "cache"),
                              sampling="start")
            except (ValueError, ImportError, OSError) as e:
                print(f"note: skipped chorales: could not export them ({e})")
                return None
        return chorales
    for file_name in SET_FILES[name]:
        if (data_dir / file_name).is_file():
            return data_dir / file_name
    print(f"note: skipped {name}: none of {', '.join(SET_FILES[name])} in {data_dir}")
    return None


def frame_config(path: Path, family: str, head: str, steps: int | None, out: Path, overrides: list[str]):
    """The config `seqkit train PATH --tokenizer pianoroll --model FAMILY --set model.frame_head=HEAD`
    resolves to: the frame kind's defaults under the given settings."""
    from seqkit.config import RunConfig, apply_overrides, set_value
    from seqkit.kinds import kind_class

    cfg = RunConfig()
    cfg.data.tokenizer, cfg.model.family = "pianoroll", family
    for key, value in kind_class("pianoroll")().default_settings(cfg).items():
        set_value(cfg, key, value)
    cfg.model.frame_head = head
    cfg.data.source, cfg.train.out, cfg.train.progress = str(path), str(out), False
    cfg.data.cache_dir = str(ROOT / "data" / "cache")
    if steps is not None:
        cfg.train.max_steps = steps
    apply_overrides(cfg, overrides)
    return cfg


def run_one(path: Path, family: str, head: str, steps: int | None, out: Path, overrides: list[str]) -> dict:
    import seqkit

    cfg = frame_config(path, family, head, steps, out, overrides)
    start = time.perf_counter()
    trained = seqkit.load(seqkit.train(cfg))
    seconds = time.perf_counter() - start
    metrics = trained.evaluate(str(path), split="test")
    return {"steps": trained.info["summary"]["steps"], "parameters": trained.num_parameters,
            "nll": metrics["nll_per_frame"], "f1": metrics["f1"], "seconds": seconds, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="chorales,musedata,piano_midi,jsb,nottingham",
                        help=f"comma-separated, of {', '.join(SET_FILES)}")
    parser.add_argument("--families", default="lstm,transformer", help="comma-separated model families")
    parser.add_argument("--heads", default="bernoulli,nade", help="comma-separated: bernoulli, nade")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the frame defaults')")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the benchmark files are")
    parser.add_argument("--chorales", type=Path, default=CHORALES, help="the exported chorales (written if missing)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="any config field: key=value")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="20 steps, to check the script runs")
    args = parser.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SET_FILES]
    if unknown:
        parser.error(f"unknown set {unknown[0]!r}; choose from {', '.join(SET_FILES)}")
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    steps = 20 if args.quick else args.steps
    work = args.out or Path(tempfile.mkdtemp(prefix="seqkit-bench-poly-"))
    import torch

    print(f"# Polyphonic music: test NLL per frame (nats), frame defaults, {torch.get_num_threads()} CPU threads, "
          f"load {os.getloadavg()[0]:.1f} at the start\n")
    rows = []
    try:
        for name in sets:
            path = set_path(name, args.data_dir, args.chorales)
            if path is None:
                continue
            for family in families:
                for head in heads:
                    result = run_one(path, family, head, steps, work / f"{name}-{family}-{head}", args.overrides)
                    rows.append([name, family, head, result["steps"], f"{result['parameters']:,}",
                                 f"{result['nll']:.3f}", f"{result['f1']:.3f}", f"{result['seconds']:.0f}",
                                 f"{result['load']:.1f}", PUBLISHED.get((name, head), "")])
                    print(f"{name} {family} {head}: {result['nll']:.3f} nats/frame in {result['seconds']:.0f} s",
                          file=sys.stderr, flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    header = ["set", "family", "head", "steps", "parameters", "test NLL/frame", "test F1", "train s", "load",
              "published (test NLL/frame)"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
