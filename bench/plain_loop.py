"""`seqkit.train` against a plain PyTorch loop over a whole run (validation and checkpoints included).

Both train the same seqkit model on the same batches (RandomWindows, same seed), with nanoGPT's loop
essentials: AdamW (unfused, as nanoGPT builds it on a CPU), linear warmup then cosine decay, gradient
clipping, evaluation every `val_every` steps on the same validation windows and a checkpoint (model +
optimizer) after each evaluation.
The two run side by side, one thread each, so that a busy machine slows both alike; the ratio
seqkit / plain is what to read (target <= 1.0).

    .venv/bin/python bench/plain_loop.py              # nanoGPT's shakespeare_char tiny shape, 2,000 steps
    .venv/bin/python bench/plain_loop.py --steps 300  # smoke test
    .venv/bin/python bench/plain_loop.py --nanogpt ~/nanoGPT   # against nanoGPT's own train.py instead
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def run_config(family: str, steps: int, out: Path, cache: Path, source: str | None = None):
    """The run both loops train. transformer: nanoGPT's `train_shakespeare_char` on CPU as its README shrinks
    it: 4 layers × 4 heads × 128, context 64, batch 12, AdamW 1e-3 (0.9, 0.99), weight decay 0.1, warmup
    100, cosine to 1e-4, clip 1. Other families: the `bench` preset's model and batch on the same schedule."""
    from seqkit.config import RunConfig
    from seqkit.presets import preset

    source = source or (str(SHAKESPEARE) if SHAKESPEARE.exists() else "pydoc")
    if family == "transformer":
        cfg = RunConfig()
        m = cfg.model
        m.family, m.n_layers, m.n_heads, m.d_embed, m.context, m.dropout = "transformer", 4, 4, 128, 64, 0.0
        cfg.train.batch_size = 12
    else:
        cfg = preset("bench", family)
    cfg.data.source, cfg.data.cache_dir, cfg.data.val_fraction = source, str(cache), 0.1
    t = cfg.train
    t.max_steps, t.lr, t.betas, t.weight_decay = steps, 1e-3, (0.9, 0.99), 0.1
    t.warmup_steps, t.min_lr_ratio, t.grad_clip = 100, 0.1, 1.0
    t.val_every, t.val_batches = 250, 20
    t.progress, t.accelerator, t.devices, t.out = False, "cpu", "1", str(out)
    return cfg


def plain_run(cfg, threads: int = 1) -> dict:
    """Train cfg's model with a bare loop; → {"seconds", "cpu_seconds", "val_loss", "train_loss", "steps"} over
    the whole run (corpus from the cache, model, training, evaluations and checkpoints). CPU seconds of the
    process are steadier than wall seconds on a shared machine (with one thread: no spinning workers)."""
    from torch.utils.data import DataLoader

    from seqkit.data import RandomWindows, Windows
    from seqkit.kinds import load_corpus
    from seqkit.models import build_model
    from seqkit.module import lr_factor

    torch.set_num_threads(threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    torch.manual_seed(cfg.train.seed)
    corpus = load_corpus(cfg.data)
    cfg.model.vocab_size, loss_of = corpus.tokenizer.vocab_size, corpus.tokenizer.loss  # cross-entropy, as seqkit's
    model = build_model(cfg.model)
    t = cfg.train
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": t.weight_decay},
                                   {"params": others, "weight_decay": 0.0}], lr=t.lr, betas=t.betas)
    batches = iter(RandomWindows(corpus.train, cfg.model.context, t.batch_size, t.seed))
    val = DataLoader(Windows(corpus.val, cfg.model.context, t.val_batches * t.batch_size), batch_size=t.batch_size)
    out = Path(t.out)
    out.mkdir(parents=True, exist_ok=True)
    val_loss = train_loss = math.nan

    def evaluate() -> float:
        model.eval()
        total = count = 0.0
        with torch.no_grad():
            for batch in val:
                loss, n = loss_of(model, batch)
                total, count = total + loss.item() * n.item(), count + n.item()
        model.train()
        return total / count

    for step in range(t.max_steps):
        lr = t.lr * lr_factor(step, t.warmup_steps, t.max_steps, t.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, _ = loss_of(model, next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        train_loss = loss.item()  # nanoGPT reads the loss every step (log_interval=1 in its CPU recipe)
        if (step + 1) % t.val_every == 0 or step + 1 == t.max_steps:
            val_loss = evaluate()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1,
                        "val_loss": val_loss}, out / "ckpt.pt")
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
            "val_loss": val_loss, "train_loss": train_loss, "steps": t.max_steps}


def seqkit_run(cfg, threads: int = 1) -> dict:
    """`seqkit.train(cfg)`; → {"seconds" (around the call), "cpu_seconds", "wall_seconds" (run.json's),
    "val_loss", "ms_per_step"}."""
    import seqkit

    torch.set_num_threads(threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    run_dir = seqkit.train(cfg)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    summary = json.loads((Path(run_dir) / "run.json").read_text())["summary"]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "wall_seconds": summary["wall_seconds"], "val_loss": summary["best_val_loss"],
            "ms_per_step": summary["ms_per_step"], "steps": summary["steps"]}


def compare(steps: int, repeats: int = 1, threads: int = 1, work: Path | None = None,
            family: str = "transformer", source: str | None = None) -> list[dict]:
    """Run the plain loop and `seqkit train` side by side, `threads` torch threads each, `repeats` times;
    → one row per pair with the ratio seqkit / plain. Side by side, both meet the same machine: on a shared
    machine the speed of a core drifts by ±30% over minutes, so runs one after the other compare badly."""
    work = Path(work or tempfile.mkdtemp(prefix="seqkit-plain-"))
    rows = []
    try:
        from seqkit.kinds import load_corpus
        load_corpus(run_config(family, steps, work / "warm", work / "cache", source).data)  # tokenise once, outside the timings
        for i in range(repeats):
            jobs = {kind: subprocess.Popen(
                [sys.executable, __file__, "--only", kind, "--steps", str(steps), "--family", family,
                 "--threads", str(threads), "--work", str(work / f"{kind}-{i}"), "--cache", str(work / "cache"),
                 *(["--source", source] if source else [])], stdout=subprocess.PIPE, text=True)
                for kind in ("plain", "seqkit")}
            row = {}
            for kind, job in jobs.items():
                out, _ = job.communicate()
                if job.returncode:
                    raise RuntimeError(f"the {kind} run failed (exit {job.returncode})")
                row[kind] = json.loads(out.strip().splitlines()[-1])
            row["ratio"] = row["seqkit"]["seconds"] / row["plain"]["seconds"]
            row["cpu_ratio"] = row["seqkit"]["cpu_seconds"] / row["plain"]["cpu_seconds"]
            rows.append(row)
            p, s = row["plain"], row["seqkit"]
            print(f"{family} pair {i}: plain {p['seconds']:.1f} s ({p['cpu_seconds']:.1f} s CPU, val {p['val_loss']:.4f}), "
                  f"seqkit {s['seconds']:.1f} s ({s['cpu_seconds']:.1f} s CPU, val {s['val_loss']:.4f}), "
                  f"ratio {row['ratio']:.3f} (CPU {row['cpu_ratio']:.3f})", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


NANOGPT_RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                  "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                  "--n_embd=128", "--dropout=0.0"]  # the CPU recipe of nanoGPT's README


def against_nanogpt(repo: Path, steps: int, threads: int = 1) -> dict:
    """nanoGPT's own train.py on its README's CPU recipe and `seqkit train` on the same shape and schedule,
    side by side, `threads` each, each timed as a whole process (imports included) → {"nanogpt", "seqkit":
    seconds, "ratio", "nanogpt_val", "seqkit_val"}. nanoGPT's data are prepared from the same text."""
    if not SHAKESPEARE.exists():
        raise SystemExit(f"--nanogpt needs {SHAKESPEARE}")
    data = repo / "data" / "shakespeare_char"
    if not (data / "train.bin").exists():
        shutil.copy(SHAKESPEARE, data / "input.txt")  # prepare.py downloads it only when it is missing
        subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="seqkit-nanogpt-"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    jobs, logs = {}, {}
    try:
        from seqkit.kinds import load_corpus
        load_corpus(run_config("transformer", steps, work / "warm", work / "cache").data)  # tokenise outside the timing
        commands = {"nanogpt": ([sys.executable, "train.py", *NANOGPT_RECIPE, f"--max_iters={steps}",
                                 f"--lr_decay_iters={steps}", f"--out_dir={work / 'nanogpt'}"], repo),
                    "seqkit": ([sys.executable, __file__, "--only", "seqkit", "--steps", str(steps), "--threads",
                                str(threads), "--work", str(work / "seqkit"), "--cache", str(work / "cache")], ROOT)}
        start, seconds = time.perf_counter(), {}
        for name, (command, cwd) in commands.items():
            logs[name] = (work / f"{name}.log").open("w")
            jobs[name] = subprocess.Popen(command, cwd=cwd, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        while len(seconds) < len(jobs):
            for name, job in jobs.items():
                if name not in seconds and job.poll() is not None:
                    if job.returncode:
                        tail = (work / f"{name}.log").read_text().strip().splitlines()[-5:]
                        raise RuntimeError(f"{name} failed (exit {job.returncode}):\n" + "\n".join(tail))
                    seconds[name] = time.perf_counter() - start
            time.sleep(0.05)
        nano_val = [line.split("val loss")[1].strip() for line in (work / "nanogpt.log").read_text().splitlines()
                    if "val loss" in line][-1]
        ours = json.loads((work / "seqkit.log").read_text().strip().splitlines()[-1])
        return {**seconds, "ratio": seconds["seqkit"] / seconds["nanogpt"], "nanogpt_val": float(nano_val),
                "seqkit_val": ours["val_loss"]}
    finally:
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
        for log in logs.values():
            log.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--family", default="transformer", help="the model both loops train")
    parser.add_argument("--repeats", type=int, default=1, help="side-by-side pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--source", default=None, help="the text (default: tinyshakespeare, else pydoc)")
    parser.add_argument("--only", choices=["plain", "seqkit"], help="one run; prints its result as JSON")
    parser.add_argument("--work", type=Path, help="with --only: its run directory")
    parser.add_argument("--cache", type=Path, help="with --only: the token cache")
    parser.add_argument("--nanogpt", type=Path, help="a checkout of karpathy/nanoGPT: run against its train.py")
    args = parser.parse_args()
    if args.nanogpt:
        r = against_nanogpt(args.nanogpt, args.steps, args.threads)
        print(f"transformer, {args.steps} steps, whole processes side by side: nanoGPT {r['nanogpt']:.1f} s (val "
              f"{r['nanogpt_val']:.4f}), seqkit {r['seqkit']:.1f} s (val {r['seqkit_val']:.4f}); ratio {r['ratio']:.3f}")
        return
    if args.only:
        cfg = run_config(args.family, args.steps, args.work, args.cache, args.source)
        print(json.dumps((plain_run if args.only == "plain" else seqkit_run)(cfg, args.threads)))
        return
    print(f"load before: {os.getloadavg()[0]:.2f}; torch {torch.__version__}, {args.threads} thread(s) per run", flush=True)
    rows = compare(args.steps, args.repeats, args.threads, family=args.family, source=args.source)
    for key in ("ratio", "cpu_ratio"):
        ratios = [r[key] for r in rows]
        print(f"{args.family}: seqkit / plain {'wall' if key == 'ratio' else 'CPU'} seconds over {args.steps} steps: median "
              f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
