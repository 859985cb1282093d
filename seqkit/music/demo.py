"""Song prediction: train (or reuse) a model on the Bach chorales, then continue held-out chorales from
their opening bars — scored against the truth and two baselines, written as MIDI and piano rolls."""
from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from seqkit.io import atomic_path, warn
from seqkit.kinds.base import scored_log_probs
from seqkit.music.audio import AUTO, render_wav
from seqkit.music.generate import opening_bars, until_eos
from seqkit.music.near_copies import SPLIT_VERSION
from seqkit.music.notes import transpose_notes
from seqkit.music.pianoroll import plot_comparison
from seqkit.music.stats import COLUMNS, continuation_rows, format_table, sample_continuations
from seqkit.music.tokenizer import KEY_BARS
from seqkit.presets import PRESETS, preset

DEMO_FAMILY = "transformer"
SPLIT_STAMP = "split.json"  # which split of the songs the demo's model was trained on
DEMO_SAMPLING = {"temperature": 1.0, "top_p": 0.95}  # chosen by measurement: see the README, "Song demo"


def demo_config(model: str, steps: int | None, run_dir: Path, data: str = "bach"):
    steps = steps or PRESETS["demo"]["train.max_steps"]
    cfg = preset("demo", model, source=data, max_steps=steps, val_every=max(steps // 4, 1), out=str(run_dir))
    if not native_bf16():
        cfg.train.precision = "32-true"
    return cfg


def native_bf16() -> bool:
    """Whether bf16 autocast pays here: a GPU that computes in bf16, or a CPU with bf16 instructions
    (AVX512-BF16, AMX). Elsewhere it is emulated, slower than float32."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def score_pieces(trained, test: list[np.ndarray], train: list[np.ndarray], bars: int) -> dict[str, dict]:
    """Mean NLL per token and top-1/top-5 next-pitch accuracy on the continuations (after `bars` bars),
    for the model, a unigram baseline and a repeat-the-last-pitch baseline."""
    tokenizer = trained.tokenizer
    s = tokenizer.settings
    pitch_ids = np.arange(tokenizer.ids["Pitch", s.pitch_low], tokenizer.ids["Pitch", s.pitch_high] + 1)
    is_pitch = np.zeros(tokenizer.vocab_size, bool)
    is_pitch[pitch_ids] = True
    counts = np.bincount(np.concatenate(train), minlength=tokenizer.vocab_size) + 1.0
    unigram_log_p = np.log(counts / counts.sum())
    unigram_pitch_rank = pitch_ids[np.argsort(-counts[pitch_ids])]
    starts_onset = np.zeros(tokenizer.vocab_size, bool)
    starts_onset[[i for i, (kind, _) in enumerate(tokenizer.tokens) if kind in ("Bar", "Position")]] = True
    totals = {name: Counter() for name in ("model", "unigram", "repeat last note")}
    for piece in test:
        ids = [int(t) for t in piece]
        start = len(opening_bars(tokenizer, ids, bars))
        if start >= len(ids) - 1:
            continue
        log_p = scored_log_probs(trained.model, ids)[start - 1:].cpu().numpy()
        targets = np.array(ids[start:])
        totals["model"]["nll"] += -log_p[np.arange(len(targets)), targets].sum()
        totals["unigram"]["nll"] += -unigram_log_p[targets].sum()
        for name in totals:
            totals[name]["tokens"] += len(targets)
        chords = onset_chords(ids[:start], is_pitch, starts_onset)
        for offset, target in enumerate(targets):
            if starts_onset[target] and chords[-1]:
                chords.append([])
            elif is_pitch[target]:
                model_rank = pitch_ids[np.argsort(-log_p[offset][pitch_ids])]
                repeat = repeat_last_note(chords)
                for name, ranking in (("model", model_rank), ("unigram", unigram_pitch_rank), ("repeat last note", repeat)):
                    totals[name]["top1"] += target in ranking[:1]
                    totals[name]["top5"] += target in ranking[:5]
                    totals[name]["pitches"] += 1
                chords[-1].append(target)
    return {name: {"nll_per_token": t["nll"] / t["tokens"] if "nll" in t else math.nan,
                   "top1_pitch": t["top1"] / max(t["pitches"], 1), "top5_pitch": t["top5"] / max(t["pitches"], 1)}
            for name, t in totals.items()}


def onset_chords(ids: list[int], is_pitch, starts_onset) -> list[list[int]]:
    """The pitch tokens of each onset (Bar/Position starts a new one), in order: [[p, ...], ..., current]."""
    chords = [[]]
    for token in ids:
        if starts_onset[token] and chords[-1]:
            chords.append([])
        elif is_pitch[token]:
            chords[-1].append(token)
    return chords


def repeat_last_note(chords: list[list[int]]) -> list[int]:
    """Baseline ranking for the next pitch: the same voice's note at the previous onset (the i-th pitch
    of the previous chord for the i-th pitch of this one), then that chord's other pitches, nearest first."""
    previous = next((c for c in reversed(chords[:-1]) if c), [])
    if not previous:
        return []
    same_voice = previous[min(len(chords[-1]), len(previous) - 1)]
    return sorted(dict.fromkeys(previous), key=lambda p: abs(p - same_voice))


def predict_song(model: str = DEMO_FAMILY, steps: int | None = None, bars: int = 4, examples: int | str = 3,
                 out: Path = Path("checkpoints/demo-predict-song"), seed: int = 0, wandb: bool = False,
                 data: str = "bach", echo=print, audio: bool = False, soundfont=None, pieces: int | str = "all",
                 temperature: float | None = None, top_p: float | None = None, **overrides) -> dict:
    """Train (or reuse) `model` on `data` (songs split by piece), then prime each held-out song with its
    first `bars` bars: score the true continuation (teacher forced), sample a continuation of `pieces`
    of them ("all" or a number) for the music statistics, and write `examples` of those as MIDI + PNG.
    `overrides` are config keys for a new run, e.g. {"model.d_hidden": 64}."""
    import seqkit
    from seqkit.config import set_value
    from seqkit.music.data import split_sequences

    count(pieces, 0), count(examples, 0)  # bad input fails before training
    if bars < 1:
        raise ValueError(f"bars must be at least 1, got {bars}: the demo continues each song from its opening bars")
    run_dir = out / f"{model}-{Path(data).stem}"
    if (run_dir / "model.pt").is_file() and trained_on_this_split(run_dir):
        echo(f"reusing the trained model in {run_dir}")
    else:
        if (run_dir / "model.pt").is_file():  # trained on an older split: its held-out songs may have been trained on
            old = run_dir.with_name(f"{run_dir.name}-split{SPLIT_VERSION - 1}")
            shutil.rmtree(old, ignore_errors=True)
            run_dir.rename(old)
            echo(f"{run_dir} was trained on an older split of the songs; moved to {old}, training anew")
        cfg = demo_config(model, steps, run_dir, data)
        cfg.train.wandb = wandb
        for key, value in overrides.items():
            set_value(cfg, key, value)
        seqkit.train(cfg)
        with atomic_path(run_dir / SPLIT_STAMP) as tmp:
            tmp.write_text(json.dumps({"split_version": SPLIT_VERSION}))
    trained = seqkit.load(run_dir)
    tokenizer = trained.tokenizer
    splits = split_sequences(trained.config.data, tokenizer)
    if not splits["test"]:
        raise ValueError(f"{data}: too few pieces for a held-out test split; use a folder of at least 3 songs")
    test, shifts = keyed_by_prompt(tokenizer, splits["test"], bars)
    scores = score_pieces(trained, list(test.values()), list(splits["train"].values()), bars)

    held_out = dict(list(test.items())[:count(pieces, len(test))])
    sampling = {"temperature": DEMO_SAMPLING["temperature"] if temperature is None else temperature,
                "top_p": DEMO_SAMPLING["top_p"] if top_p is None else top_p}
    continuations = sample_continuations(trained, held_out, bars, seed=seed, **sampling)
    rows = continuation_rows(continuations)

    files, synthesizer = [], None
    for piece in continuations[:count(examples, len(continuations))]:
        stem = out / "predictions" / Path(piece.name).stem
        stem.parent.mkdir(parents=True, exist_ok=True)
        back = -shifts(piece.name)  # normalize_key: the files play in the piece's own key
        tokenizer.write_midi(list(piece.ids), f"{stem}-prediction.mid", transpose=back)
        tokenizer.write_midi(until_eos(tokenizer, [int(t) for t in held_out[piece.name]]), f"{stem}-truth.mid",
                             transpose=back)
        if audio:
            for name in (f"{stem}-prediction", f"{stem}-truth"):
                synthesizer = render_wav(f"{name}.mid", f"{name}.wav", soundfont or AUTO)
                files.append(f"{name}.wav")
        prompt, continuation, truth = (transpose_notes(notes, back) for notes in (piece.prompt, piece.model, piece.bach))
        plot_comparison(f"{stem}.png", prompt, continuation, truth,
                        title=f"{Path(piece.name).stem}: {bars} bars, then {model} vs Bach")
        files += [f"{stem}-prediction.mid", f"{stem}-truth.mid", f"{stem}.png"]

    echo(f"\nHeld-out songs: {len(splits['test'])}, primed with {bars} bars; scored on the rest (teacher forcing)\n")
    echo(f"{'predictor':<20} {'NLL/token':>10} {'top-1 pitch':>12} {'top-5 pitch':>12}")
    for name, m in scores.items():
        nll = "—" if math.isnan(m["nll_per_token"]) else f"{m['nll_per_token']:.3f}"
        echo(f"{name:<20} {nll:>10} {m['top1_pitch']:>12.3f} {m['top5_pitch']:>12.3f}")
    echo(f"\nContinuations of {len(continuations)} held-out songs (sampled at temperature {sampling['temperature']}, "
         f"top-p {sampling['top_p']}), means over the songs\n")
    echo(format_table(rows))
    if files:
        echo("\nfiles:\n  " + "\n  ".join(files))
    if synthesizer:
        echo(f"audio played by the {synthesizer}")
    if wandb:
        log_to_wandb(run_dir, scores, rows, [f for f in files if f.endswith(".png")], [f for f in files if f.endswith(".wav")])
    return {"run_dir": run_dir, "scores": scores, "music": rows, "files": files}


def keyed_by_prompt(tokenizer, pieces: dict[str, np.ndarray], bars: int):
    """The held-out pieces ({file: token ids}) moved into key by their first `bars` bars alone, as
    `seqkit generate` moves a prompt (the split's ids were keyed by KEY_BARS bars, music after a shorter
    prompt included), and a function giving the semitones a piece was moved by."""
    if not tokenizer.settings.normalize_key or bars >= KEY_BARS:
        return pieces, tokenizer.key_shift_of_file
    keyed = {name: tokenizer.encode_keyed(tokenizer.read_piece(name), key_bars=bars) for name in pieces}
    return {name: np.array(ids) for name, (ids, _) in keyed.items()}, lambda name: keyed[name][1]


def trained_on_this_split(run_dir: Path) -> bool:
    """Whether the demo's model in `run_dir` was trained on the split seqkit makes now."""
    try:
        return json.loads((run_dir / SPLIT_STAMP).read_text()).get("split_version") == SPLIT_VERSION
    except (OSError, ValueError):
        return False


def count(value: int | str, available: int) -> int:
    """How many of `available` items `value` asks for: a number, or "all"."""
    if value == "all":
        return available
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a number or 'all', got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a number >= 0 or 'all', got {number}")
    return min(number, available)


def log_to_wandb(run_dir: Path, scores: dict, rows: dict, images: list[str], sounds: list[str] = ()) -> None:
    try:
        import wandb
        from seqkit.tracking import wandb_configured
        import os

        if not wandb_configured():
            os.environ["WANDB_MODE"] = "offline"
        run = wandb.init(project="seqkit", name=f"{run_dir.name}-predict-song", dir=str(run_dir), reinit="finish_previous")
        table = wandb.Table(columns=["predictor", "nll_per_token", "top1_pitch", "top5_pitch"],
                            data=[[k, v["nll_per_token"], v["top1_pitch"], v["top5_pitch"]] for k, v in scores.items()])
        music = wandb.Table(columns=["continuation", *COLUMNS], data=[[k, *(v[c] for c in COLUMNS)] for k, v in rows.items()])
        run.log({"song_prediction": table, "continuation_statistics": music, "piano_rolls": [wandb.Image(p) for p in images],
                 **({"audio": [wandb.Audio(p, caption=Path(p).stem) for p in sounds]} if sounds else {})})
        run.finish()
    except Exception as e:  # noqa: BLE001 - tracking must never break the demo
        warn(f"W&B logging failed: {e}")
