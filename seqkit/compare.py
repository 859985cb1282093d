"""The model ladder: train every family on the same data, split, tokenizer, budget and seed, then rank them.

Each family is one `seqkit.train` run in `out/<family>`; the leaderboard goes to `out/compare.csv`,
`out/compare.md`, and the validation curves (against steps and against wall-clock seconds) to
`out/compare.png`.
"""
from __future__ import annotations

import csv
import math
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback

import seqkit
from seqkit.config import RunConfig
from seqkit.io import atomic_path
from seqkit.kinds import default_kind, load_corpus
from seqkit.models import FAMILIES, build_model, count_parameters
from seqkit.presets import preset

DEFAULT_MODELS = "ar,ffwd,jordan,elman,lstm,transformer"
# The one width `params=N` searches per family (the others keep their "small" preset values).
WIDTH = {"ar": "d_embed", "transformer": "d_embed"}
NO_STEP_LIMIT = 10**9  # with a time budget the clock stops training, and the cosine schedule stays flat


def small_config(data: str, family: str, tokenizer: str | None = None, seed: int = 1337, out: str | Path = "",
                 **overrides) -> RunConfig:
    """The "small" preset compare and doctor train (context 64, batch 32, lr 3e-3, validation every 50
    steps) on `data`. `overrides` set any config field by name (`d_hidden=256`, `model.dropout=0.1`)."""
    cfg = preset("small", family, source=str(data), tokenizer=tokenizer or default_kind(str(data)), seed=seed,
                 out=str(out), **overrides)
    if "warmup_steps" not in overrides and "train.warmup_steps" not in overrides:
        cfg.train.warmup_steps = min(cfg.train.warmup_steps, max(1, cfg.train.max_steps // 10))
    return cfg


def size_to(cfg: RunConfig, params: int, vocab_size: int) -> None:
    """Set the family's one width option so the model has about `params` parameters (nearest size).
    The transformer's width moves in steps of 2 * n_heads (rotary needs an even head width); where
    that is too coarse for a small target (over 10% off), in steps of 2 with fewer heads."""
    knob = WIDTH.get(cfg.model.family, "d_hidden")
    units = (2 * cfg.model.n_heads, 2) if cfg.model.family == "transformer" else (1,)
    for unit in units:
        best = _nearest_width(cfg.model, knob, unit, params, vocab_size)
        if abs(best[1] - params) <= 0.1 * params:
            break
    setattr(cfg.model, knob, getattr(best[0], knob))
    cfg.model.n_heads = best[0].n_heads


def _nearest_width(model, knob: str, unit: int, params: int, vocab_size: int):
    def sized(units: int):
        width = units * unit
        heads = model.n_heads
        if model.family == "transformer":
            heads = next(h for h in (model.n_heads, 4, 2, 1) if width % (2 * h) == 0)
        return replace(model, vocab_size=vocab_size, n_heads=heads, **{knob: width})

    def count(units: int) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            return count_parameters(build_model(sized(units)))

    hi = 1
    while count(hi) < params and hi < 1 << 20:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # smallest width reaching `params`
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < params else (lo, mid)
    best = min({max(1, lo - 1), lo}, key=lambda u: abs(count(u) - params))
    return sized(best), count(best)


class Clock(Callback):
    """Seconds since training started at each validation; with `budget`, stops training once that many
    seconds have passed (Lightning then validates the final weights)."""

    def __init__(self, budget: float | None = None):
        self.budget, self.start, self.rows = budget, time.perf_counter(), []

    def on_train_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.budget is not None and time.perf_counter() - self.start >= self.budget:
            trainer.should_stop = True

    def on_validation_end(self, trainer, module):
        if not trainer.sanity_checking:
            self.rows.append((trainer.global_step, round(time.perf_counter() - self.start, 3)))

    def write(self, path: Path) -> None:
        write_csv(path, ["step", "seconds"], self.rows)


def compare(data: str, models: str = DEFAULT_MODELS, max_steps: int = 300, time_budget: float | None = None,
            tokenizer: str | None = None, seed: int = 1337, params: int | None = None,
            out: str | Path = Path("checkpoints/compare"), wandb: bool = False, echo=print,
            **overrides) -> list[dict]:
    """Train each model family on the same data, split, tokenizer, budget and seed, and rank them.

    data: a text/MIDI file, a folder or a built-in data set. models: comma-separated families.
    max_steps: optimizer steps per family; time_budget: seconds of training per family instead.
    params: size each family to about this many parameters (one width option searched per family).
    out: one run directory per family, plus compare.csv, compare.md and compare.png.
    wandb: log each family as a W&B run, all in one group. overrides: any config field by name
    (context=128, batch_size=64, lr=1e-3, val_every=25, ...). Returns the leaderboard rows, best first.
    """
    families = [m.strip() for m in models.split(",") if m.strip()] if isinstance(models, str) else list(models)
    unknown = [f for f in families if f not in FAMILIES]
    if not families or unknown:
        raise ValueError(f"unknown model famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(FAMILIES)}")
    if time_budget is not None and time_budget <= 0:
        raise ValueError(f"time budget must be positive seconds, got {time_budget}")
    if params is not None and params < 1:
        raise ValueError(f"params must be a positive number of parameters, got {params}")
    out = Path(out)
    taken = [str(out / f) for f in families if (out / f / "run.json").exists()]
    if taken:
        raise ValueError(f"{', '.join(taken)} already hold{'s' if len(taken) == 1 else ''} a run: "
                         "choose another --out or delete them")
    steps = NO_STEP_LIMIT if time_budget else max_steps
    configs = {f: small_config(data, f, tokenizer, seed, out / f, max_steps=steps, **overrides) for f in families}
    if params:
        vocab_size = load_corpus(configs[families[0]].data).tokenizer.vocab_size
        for cfg in configs.values():
            size_to(cfg, params, vocab_size)
    group = f"compare-{Path(str(data)).stem or 'data'}-{time.strftime('%Y%m%d-%H%M%S')}"
    budget = f"{time_budget:g} s" if time_budget else f"{max_steps} steps"
    rows = []
    for family, cfg in configs.items():
        echo(f"[{len(rows) + 1}/{len(families)}] training {family} for {budget} ...")
        cfg.train.wandb = wandb
        clock = Clock(time_budget)
        with _environ(WANDB_RUN_GROUP=group if wandb else None):  # wandb.init reads the group from there
            run_dir = seqkit.train(cfg, callbacks=[clock])
        clock.write(run_dir / "val_times.csv")
        rows.append(result_row(family, run_dir))
        row = rows[-1]
        loss = f"{row['best_val_loss']:.3f}" if row["best_val_loss"] is not None else "-"
        echo(f"    {family}: best validation loss {loss} after {row['steps']} steps, {row['wall_s']} s")
    rows.sort(key=lambda r: (r["best_val_loss"] is None, r["best_val_loss"] or 0.0))
    write_results(rows, out, title=f"{Path(str(data)).name}, {budget} each")
    echo("\n" + leaderboard(rows))
    echo(f"\nwrote {out / 'compare.csv'}, {out / 'compare.md'} and {out / 'compare.png'}")
    return rows


@contextmanager
def _environ(**values):
    """Set (or, for None, leave alone) environment variables for the duration of a block."""
    old = {k: os.environ.get(k) for k, v in values.items() if v is not None}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def result_row(family: str, run_dir: Path) -> dict:
    trained = seqkit.load(run_dir)
    summary = trained.info.get("summary") or {}
    loss = summary.get("best_val_loss")
    per, bits = next(((key.removeprefix("best_val_bits_per_"), value) for key, value in summary.items()
                      if key.startswith("best_val_bits_per_")), (None, None))  # char, or byte
    frames = trained.tokenizer.frames
    return {"family": family, "parameters": trained.num_parameters, "steps": summary.get("steps"),
            "train_tokens_per_s": summary.get("train_tokens_per_second"), "best_val_loss": loss,
            "bits": bits if bits is not None else (loss / math.log(2) if loss is not None else None),
            "bits_per": per or ("frame" if frames else "token"),
            "sample_tokens_per_s": None if frames else round(sampling_speed(trained)),
            "wall_s": summary.get("wall_seconds"), "run_dir": str(run_dir)}


def sampling_speed(trained, tokens: int = 200) -> float:
    """Tokens per second generating one sample (batch 1) with `TrainedModel.stream`."""
    for _ in trained.stream(max_new_tokens=5, seed=0):  # warm-up: first calls allocate
        pass
    start = time.perf_counter()
    count = sum(1 for _ in trained.stream(max_new_tokens=tokens, seed=0))
    return count / (time.perf_counter() - start)


# ---------------------------------------------------------------- output

COLUMNS = [("family", "family", "{}"), ("parameters", "parameters", "{:,}"),
           ("train_tokens_per_s", "train tok/s", "{:,.0f}"), ("best_val_loss", "best val loss", "{:.3f}"),
           ("bits", "bits/{per}", "{:.3f}"), ("sample_tokens_per_s", "sample tok/s", "{:,.0f}"),
           ("wall_s", "wall s", "{:.1f}")]


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table padded to line up in a terminal too; the first `left` columns are left-aligned,
    the others (numbers) right-aligned."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(  # noqa: E731
        str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def leaderboard(rows: list[dict]) -> str:
    per = rows[0]["bits_per"] if rows else "token"
    header = [title.format(per=per) for _, title, _ in COLUMNS]
    cells = [[fmt.format(r[key]) if r[key] is not None else "-" for key, _, fmt in COLUMNS] for r in rows]
    return markdown_table(header, cells)


def write_csv(path: Path, header: list[str], rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_results(rows: list[dict], out: Path, title: str = "") -> None:
    keys = list(rows[0])
    write_csv(out / "compare.csv", keys, [[r[k] for k in keys] for r in rows])
    with atomic_path(out / "compare.md") as tmp:
        tmp.write_text(leaderboard(rows) + "\n")
    plot_curves(rows, out / "compare.png", title)


def val_curve(run_dir: Path) -> tuple[list[int], list[float], list[float]]:
    """(steps, seconds, val losses) of a compare run: losses from logs/metrics.csv, steps and wall-clock
    seconds from val_times.csv (one row per validation, in the same order)."""
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        losses = [float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")]
    with open(run_dir / "val_times.csv", newline="") as f:
        times = [(int(r["step"]), float(r["seconds"])) for r in csv.DictReader(f)]
    n = min(len(losses), len(times))
    return [s for s, _ in times[:n]], [t for _, t in times[:n]], losses[:n]


def plot_curves(rows: list[dict], path: Path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    order = list(FAMILIES)
    for row in sorted(rows, key=lambda r: order.index(r["family"])):
        steps, seconds, losses = val_curve(Path(row["run_dir"]))
        style = dict(color=f"C{order.index(row['family'])}", marker="o", markersize=3, linewidth=1.6,
                     label=row["family"])
        by_step.plot(steps, losses, **style)
        by_time.plot(seconds, losses, **style)
    by_step.set(xlabel="training steps", ylabel="validation loss (nats / token)", title="against steps")
    by_time.set(xlabel="wall-clock seconds of training", title="against time")
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    by_time.legend(title="family", loc="best")
    fig.suptitle(f"Validation loss of each family{f' ({title})' if title else ''}", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
