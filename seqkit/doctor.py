"""The training doctor: the checks practitioners run before a long training, each PASS / WARN / FAIL with
the number behind it and a suggested fix.

FAIL means this training will not work as set up (diverges, cannot learn); WARN means it will run but
may mislead you or learn badly (leaking validation, vanishing gradients, overfitting).
"""
from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqkit.compare import markdown_table, small_config
from seqkit.io import atomic_path

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
VANISHING_RATIO = 1e-3   # first-layer / last-layer gradient norm below this: the first layers barely learn
EXPLODING_NORM = 1e3     # total gradient norm above this in the first steps
GRAD_STEPS = 30          # steps whose per-layer gradient norms are recorded
DECADES = 7              # orders of magnitude the gradient plot spans


@dataclass
class Check:
    name: str
    status: str    # PASS | WARN | FAIL
    value: float   # the number behind the verdict
    message: str   # what the number means, and the fix when it is not a PASS

    def line(self) -> str:
        return f"{self.status}  {self.name:<22} {self.value:>10.4g}  {self.message}"


def doctor(data: str, model: str = "lstm", lr: float | None = None, steps: int = 200, tokenizer: str | None = None,
           out: str | Path | None = None, echo=print, **overrides) -> list[Check]:
    """Check a set-up before a long training: loss at initialisation, overfitting one batch, gradient
    flow per layer, train/val overlap and token statistics, and a short real run.

    data: a text/MIDI file, a folder or a built-in data set. model: the family. lr: peak learning rate
    (default 3e-3). steps: steps of the one-batch overfit and of the short run. out: where doctor.md and
    doctor.png (gradient norms per layer) go (default checkpoints/doctor). overrides: any config field
    by name (n_layers=6, activation=sigmoid, dropout=0.1, weight_decay=0.1, context=128, ...).
    Returns the checks; each is also printed as it finishes.
    """
    from seqkit.data import RandomWindows
    from seqkit.kinds import kind_class, load_corpus

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    out = Path(out) if out else Path("checkpoints") / "doctor"
    cfg = small_config(data, model, tokenizer, max_steps=steps, **({"lr": lr} if lr is not None else {}), **overrides)
    if "val_every" not in overrides and "train.val_every" not in overrides:
        cfg.train.val_every = max(steps // 5, 1)  # five points on the short run's validation curve
    if kind_class(cfg.data.tokenizer).frames:
        raise ValueError("doctor checks token models; use --tokenizer midi for music")
    corpus = load_corpus(cfg.data)
    kind = corpus.tokenizer
    cfg.model.vocab_size = kind.vocab_size
    context, batch_size, seed = cfg.model.context, cfg.train.batch_size, cfg.train.seed
    if min(len(corpus.train), len(corpus.val)) < context + 2:
        raise ValueError(f"{data}: too short for a context of {context}; use more data or a smaller context")
    windows = iter(RandomWindows(corpus.train, context, batch_size, seed))
    echo(f"doctor: {describe(cfg)} on {data} (vocabulary {cfg.model.vocab_size})")

    checks = []

    def report(check: Check) -> None:
        checks.append(check)
        echo(check.line())

    init = init_loss_check(cfg, kind, next(windows))
    report(init)
    report(overfit_check(cfg, kind, next(windows)[:4], steps))
    names, norms = gradient_norms(cfg, kind, windows, min(steps, GRAD_STEPS))
    vanishing = vanishing_check(names, norms)
    report(vanishing)
    report(exploding_check(norms))
    for check in data_checks(corpus, context):
        report(check)
    baseline = unigram_entropy(np.bincount(np.asarray(corpus.train[:20_000_000]), minlength=cfg.model.vocab_size))
    report(short_run_check(cfg, init.value, baseline))

    plot_gradients(names, norms, out / "doctor.png", f"{describe(cfg)}\nfirst / last layer gradient norm: "
                   f"{vanishing.value:.2g} ({vanishing.status})")
    write_report(checks, out / "doctor.md", f"{describe(cfg)} on {data}")
    echo(f"\n{sum(c.status == FAIL for c in checks)} FAIL, {sum(c.status == WARN for c in checks)} WARN; "
         f"wrote {out / 'doctor.md'} and {out / 'doctor.png'}")
    return checks


def describe(cfg) -> str:
    m = cfg.model
    shape = f"d_embed {m.d_embed}" if m.family in ("ar", "transformer") else f"d_hidden {m.d_hidden}"
    act = f", {m.activation}" if m.family in ("ffwd", "jordan", "elman") else ""
    layers = "" if m.family in ("ar", "jordan") else f"{m.n_layers} layer{'s' * (m.n_layers > 1)}, "
    return f"{m.family} ({layers}{shape}{act}), lr {cfg.train.lr:g}, batch {cfg.train.batch_size}x{m.context}"


def fresh_model(cfg, kind):
    """The model and the optimizer training would use (same seed, same parameter groups), constant lr."""
    from seqkit.module import SeqModule

    torch.manual_seed(cfg.train.seed)
    module = SeqModule(cfg.model.__dict__, cfg.train.__dict__, kind)
    optimizer = module.configure_optimizers()["optimizer"]
    for group in optimizer.param_groups:  # the schedule set the warmup's first lr; these loops use the peak
        group["lr"] = cfg.train.lr
    return module.model, optimizer


def train_step(kind, model, optimizer, batch, grad_clip: float) -> tuple[float, list[float]]:
    """One plain optimizer step → (loss, gradient norm of every parameter before clipping)."""
    loss, _ = kind.loss(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norms = [p.grad.norm().item() if p.grad is not None else 0.0 for p in model.parameters()]
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item(), norms


# ---------------------------------------------------------------- 1. loss at initialisation

@torch.no_grad()
def init_loss_check(cfg, kind, batch) -> Check:
    model, _ = fresh_model(cfg, kind)
    model.eval()
    loss = kind.loss(model, batch)[0].item()
    uniform = math.log(cfg.model.vocab_size)
    where = f"loss {loss:.3f} at initialisation; a uniform guess scores ln(V) = {uniform:.3f}"
    if not math.isfinite(loss) or loss > 1.5 * uniform + 0.5:
        return Check("loss at init", FAIL, loss, f"{where}: the first predictions are confidently wrong. "
                     "Fix: initialise the output layer small (std ~0.02) or scale the logits down; check the init.")
    if loss > 1.1 * uniform + 0.1:
        return Check("loss at init", WARN, loss, f"{where}: logits start too large. "
                     "Fix: a smaller init of the output layer, so training does not spend steps undoing it.")
    return Check("loss at init", PASS, loss, f"{where}.")


# ---------------------------------------------------------------- 2. overfit one batch

def overfit_check(cfg, kind, batch, steps: int) -> Check:
    """Train on one small batch only: any working model and optimizer memorise it."""
    model, optimizer = fresh_model(cfg, kind)
    model.train()
    losses = [train_step(kind, model, optimizer, batch, cfg.train.grad_clip)[0] for _ in range(steps)]
    first, last = losses[0], min(losses[-10:])
    where = (f"one batch of {batch.shape[0]}x{batch.shape[1] - 1} tokens: loss {first:.3f} -> {last:.3f} "
             f"in {steps} steps")
    if not math.isfinite(last) or last > first:
        return Check("overfit one batch", FAIL, last, f"{where}; the loss went up. Fix: lower the learning rate "
                     f"(now {cfg.train.lr:g}).")
    if last > 0.5 * first:
        return Check("overfit one batch", FAIL, last, f"{where}; it should memorise it. Fix: check inputs and "
                     "targets line up; if the gradient checks show vanishing, a model that passes gradients "
                     f"back (lstm, tanh, fewer layers); else a higher learning rate (now {cfg.train.lr:g}).")
    if last > 0.1 * first:
        return Check("overfit one batch", WARN, last, f"{where}, not near zero. Fix: more steps, a wider model, "
                     "or a learning rate closer to the usual 1e-3..3e-3.")
    return Check("overfit one batch", PASS, last, f"{where}.")


# ---------------------------------------------------------------- 3. gradient flow

def gradient_norms(cfg, kind, windows, steps: int) -> tuple[list[str], np.ndarray]:
    """Per weight matrix, the gradient norm at each of the first `steps` training steps on fresh batches:
    (names in model order, norms (layers, steps)); the output head comes last."""
    model, optimizer = fresh_model(cfg, kind)
    model.train()
    names = [n for n, _ in model.named_parameters()]
    rows = [train_step(kind, model, optimizer, next(windows), cfg.train.grad_clip)[1] for _ in range(steps)]
    norms = np.array(rows).T
    keep = [i for i, (n, p) in enumerate(model.named_parameters()) if p.dim() >= 2]
    return [names[i] for i in keep], norms[keep]


def vanishing_check(names: list[str], norms: np.ndarray) -> Check:
    body = [i for i, n in enumerate(names) if not n.startswith("head.")]  # the head always gets the most
    if len(body) < 2:
        return Check("vanishing gradients", PASS, 1.0, "one layer below the output head: nothing to vanish.")
    median = np.median(norms, axis=1)
    first, last = body[0], body[-1]
    ratio = median[first] / median[last] if median[last] > 0 else 0.0
    where = f"gradient norm of {names[first]} is {ratio:.2g} x that of {names[last]}"
    if ratio < VANISHING_RATIO:
        return Check("vanishing gradients", WARN, ratio, f"{where}: the first layers barely learn. Fix: gated "
                     "units (lstm) or tanh/relu instead of sigmoid, fewer layers, residual connections or "
                     "normalisation.")
    return Check("vanishing gradients", PASS, ratio, f"{where}.")


def exploding_check(norms: np.ndarray) -> Check:
    total = np.sqrt((norms ** 2).sum(axis=0))  # per step
    if not np.isfinite(total).all():
        step = int(np.argmin(np.isfinite(total)))
        return Check("exploding gradients", FAIL, math.inf, f"gradient is NaN/inf at step {step}. "
                     "Fix: lower the learning rate, clip gradients (train.grad_clip=1), add warmup.")
    peak, growth = total.max(), total[-1] / max(total[0], 1e-12)
    where = f"total gradient norm peaks at {peak:.3g} in the first {len(total)} steps (x{growth:.3g} from the first)"
    if peak > EXPLODING_NORM or growth > 100:
        return Check("exploding gradients", WARN, peak, f"{where}. Fix: lower the learning rate, clip gradients "
                     "(train.grad_clip=1), more warmup; for rnns, tanh instead of relu.")
    return Check("exploding gradients", PASS, peak, f"{where}.")


def plot_gradients(names: list[str], norms: np.ndarray, path: Path, title: str) -> None:
    """Heatmap of log10 gradient norm (layers top to bottom in model order, steps left to right), and
    each layer's median beside it on a log axis: vanishing shows as a fade towards the first layers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = np.log10(np.maximum(norms, 1e-30))
    fig, (heat, bars) = plt.subplots(1, 2, figsize=(12, max(3.6, 1.6 + 0.38 * len(names))), sharey=True,
                                     gridspec_kw={"width_ratios": [3, 1.4]})
    top = float(np.nanmax(logs[np.isfinite(logs)])) if np.isfinite(logs).any() else 0.0
    # A fixed span of decades, so a healthy model looks even and a vanishing one fades, whatever the scale.
    image = heat.imshow(logs, aspect="auto", cmap="viridis", interpolation="nearest", vmin=top - DECADES, vmax=top,
                        extent=(0.5, norms.shape[1] + 0.5, len(names) - 0.5, -0.5))
    fig.colorbar(image, ax=heat, pad=0.01, extend="min", label="log10 gradient norm")
    heat.set(yticks=range(len(names)), yticklabels=names, xlabel="training step",
             title="gradient norm per layer and step")
    median = np.median(norms, axis=1)
    bars.barh(range(len(names)), np.maximum(median, 1e-30),
              color=["C1" if n.startswith("head.") else "C0" for n in names])  # the output head in orange
    bars.set_xscale("log")
    low = min(10 ** (top - DECADES), median[median > 0].min() / 3 if (median > 0).any() else 1.0)
    bars.set_xlim(low, 10 ** (top + 0.3))
    bars.set(xlabel="median gradient norm (log scale)", title="per layer")
    bars.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# ---------------------------------------------------------------- 4. data

def window_hashes(tokens: np.ndarray, k: int, stride: int = 1) -> np.ndarray:
    """A 64-bit polynomial hash of every k-token window starting at multiples of `stride`."""
    n = len(tokens) - k + 1
    tokens = np.asarray(tokens, dtype=np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * np.uint64(1_000_003) + tokens[j:j + n] + np.uint64(1)
    return h[::stride]


def unigram_entropy(counts: np.ndarray) -> float:
    """Nats per token of the best context-free guess: what a model that learned only frequencies scores."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def data_checks(corpus, context: int, max_tokens: int = 20_000_000) -> list[Check]:
    train, val = np.asarray(corpus.train[:max_tokens]), np.asarray(corpus.val[:max_tokens // 10])
    checks = []

    k = min(64, context)
    val_windows = window_hashes(val, k, stride=k)
    shared = float(np.isin(val_windows, window_hashes(train, k)).mean()) if len(val_windows) else 0.0
    where = f"{shared:.1%} of validation windows ({k} tokens) also occur verbatim in train"
    if shared > 0.05:
        checks.append(Check("train/val overlap", WARN, shared, f"{where}: validation loss will be optimistic. "
                            "Fix: deduplicate the corpus, or split by document rather than by position."))
    else:
        checks.append(Check("train/val overlap", PASS, shared, f"{where}."))

    counts = np.bincount(train, minlength=corpus.tokenizer.vocab_size)
    entropy = unigram_entropy(counts)
    top = int(counts.argmax())
    share = counts[top] / counts.sum()
    where = (f"top token {corpus.tokenizer.describe([top])[0]} is {share:.1%} of train; unigram entropy "
             f"{entropy:.2f} nats/token (uniform: {math.log(corpus.tokenizer.vocab_size):.2f}), the loss a "
             "model that ignores context gets")
    if share > 0.5:
        checks.append(Check("token frequency", WARN, share, f"{where}: predicting it always looks good. "
                            "Fix: check for padding or filler tokens, or weight the loss."))
    else:
        checks.append(Check("token frequency", PASS, share, f"{where}."))

    unseen = float((counts[val] == 0).mean())
    where = f"{unseen:.2%} of validation tokens never occur in train"
    if unseen > 0.01:
        checks.append(Check("unseen val tokens", WARN, unseen, f"{where}: the model cannot have learned them. "
                            "Fix: shuffle documents before splitting, or a subword/byte tokenizer."))
    else:
        checks.append(Check("unseen val tokens", PASS, unseen, f"{where}."))
    return checks


# ---------------------------------------------------------------- 5. a short real run

def short_run_check(cfg, init_loss: float, baseline: float) -> Check:
    """`steps` steps of real training through seqkit.train (schedule, clipping, validation included)."""
    import seqkit

    with tempfile.TemporaryDirectory(prefix="seqkit-doctor-") as tmp:
        cfg.train.out = str(Path(tmp) / "run")
        try:
            run_dir = seqkit.train(cfg)
        except ValueError as e:
            if "diverged" not in str(e):
                raise
            return Check("short run", FAIL, math.nan, f"loss went NaN/inf within {cfg.train.max_steps} steps. "
                         f"Fix: lower the learning rate (now {cfg.train.lr:g}), more warmup, gradient clipping.")
        with open(run_dir / "logs" / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")] or [math.nan]
    train_end = float(np.mean(train[-3:])) if train else init_loss
    where = (f"{cfg.train.max_steps} steps: train {train_end:.3f}, val {val[-1]:.3f} (best {min(val):.3f}, "
             f"at init {init_loss:.3f})")
    if not all(map(math.isfinite, train + val)) or train_end >= init_loss or val[-1] >= init_loss:
        return Check("short run", FAIL, val[-1], f"{where}: the loss went up. Fix: lower the learning rate "
                     f"(now {cfg.train.lr:g}), more warmup, check the data.")
    gap = val[-1] - train_end
    if min(val) > baseline:
        return Check("short run", WARN, min(val), f"{where}: validation is still above {baseline:.3f}, the unigram "
                     "entropy, so it has learned no more than token frequencies. Fix: train longer, or see the "
                     "overfit and gradient checks.")
    if gap > 0.2 * train_end or val[-1] > min(val) + 0.02:
        return Check("short run", WARN, gap, f"{where}: validation is {gap:.3f} above train and "
                     f"{'rising' if val[-1] > min(val) + 0.02 else 'pulling away'}: overfitting. Fix: dropout "
                     "(dropout=0.2), weight decay (weight_decay=0.1), early stopping (early_stopping=3), "
                     "more data or a smaller model.")
    return Check("short run", PASS, gap, f"{where}: train/val gap {gap:.3f}, no sign of overfitting yet.")


def write_report(checks: list[Check], path: Path, title: str) -> None:
    rows = [[c.name, c.status, c.message.replace("|", "/"), f"{c.value:.4g}"] for c in checks]
    text = (f"# seqkit doctor: {title}\n\n"
            f"{sum(c.status == FAIL for c in checks)} FAIL, {sum(c.status == WARN for c in checks)} WARN, "
            f"{sum(c.status == PASS for c in checks)} PASS\n\n"
            + markdown_table(["check", "status", "what it means / fix", "value"], rows, left=3)
            + f"\n\n![gradient norm per layer]({path.with_suffix('.png').name})\n")
    with atomic_path(path) as tmp:
        tmp.write_text(text)
