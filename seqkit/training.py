"""Training from a RunConfig: corpus → model → Lightning Trainer → a run directory."""
from __future__ import annotations

import contextlib
import logging
import statistics
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from seqkit.checkpoint import export_weights, read_run_info, read_tokenizer, save_run_info, update_run_info
from seqkit.config import RunConfig, apply_overrides, changes, check
from seqkit.io import atomic_path
from seqkit.kinds import load_corpus
from seqkit.models import count_parameters
from seqkit.module import SeqModule


@contextlib.contextmanager
def quiet_lightning():
    """Lightning's start-up banners (GPU available, tips) and warnings that are noise here; only while
    training, so importing seqkit changes nothing."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # ckpt/ of a resumed run
        try:
            yield
        finally:
            logger.setLevel(level)


def default_run_dir(cfg: RunConfig) -> Path:
    name = Path(cfg.data.source).stem or "data"
    return Path("checkpoints") / f"{cfg.model.family}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_devices(cfg: RunConfig) -> None:
    accelerator, devices = cfg.train.accelerator, cfg.train.devices
    if accelerator in ("gpu", "cuda"):
        wanted = torch.cuda.device_count() if devices in ("auto", "-1") else _device_count(devices)
        if torch.cuda.device_count() < max(wanted, 1):
            raise ValueError(f"asked for {max(wanted, 1)} GPU(s) but this machine has {torch.cuda.device_count()}: "
                             "use --accelerator cpu or fewer --devices")


def _device_count(devices: str) -> int:
    return len(devices.split(",")) if "," in devices else int(devices)


class StepProgressBar(TQDMProgressBar):
    """Training is step-based: the bar counts optimizer steps to max_steps (not epochs) and shows no v_num."""

    @property
    def train_description(self) -> str:
        return "steps"

    def on_train_epoch_start(self, trainer, *_):
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps)
        bar.n = trainer.global_step
        bar.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        bar = self.train_progress_bar
        if bar is not None and self._should_update(trainer.global_step, bar.total):
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class Throughput(Callback):
    """Train tokens per second from the median time between consecutive steps (data loading and
    Lightning's own work included; the occasional validation is outvoted)."""

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step, self.starts = tokens_per_step, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.starts.append(time.perf_counter())

    @property
    def seconds_per_step(self) -> float | None:
        return statistics.median(b - a for a, b in zip(self.starts, self.starts[1:])) if len(self.starts) > 2 else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.tokens_per_step / self.seconds_per_step if self.seconds_per_step else None


def train(cfg: RunConfig, callbacks: list | None = None) -> Path:
    """Train a new model as `cfg` says; returns its run directory."""
    run_dir = Path(cfg.train.out) if cfg.train.out else default_run_dir(cfg)
    if (run_dir / "run.json").exists() and rank_zero_only.rank == 0:  # ranks > 0 start after rank 0 wrote it
        raise ValueError(f"{run_dir} already holds a run: add --resume to continue it, or choose another --out")
    return _fit(cfg, run_dir, None, callbacks)


def resume(run_dir: str | Path, overrides: list[str] | dict = (), callbacks: list | None = None) -> Path:
    """Continue a run from ckpt/last.ckpt: weights, optimizer, schedule, RNG and data position.
    `overrides` (`["train.max_steps=5000"]` or `{"train.max_steps": 5000}`) may restate any saved value, as
    rerunning the first command does, and may change the budget, the learning rate, the context and batch
    (the data stream then differs from a straight run's), precision and hardware; any other change is refused."""
    run_dir, info = read_run_info(run_dir)
    saved = RunConfig.from_dict(info["config"])
    cfg = RunConfig.from_dict(info["config"])
    apply_overrides(cfg, overrides)
    cfg.train.out = saved.train.out  # the run is the folder resumed, whatever --out spelled it as
    if _same_file(saved.data.source, cfg.data.source):
        cfg.data.source = saved.data.source
    fixed = [f"{key} {_shown(old)} -> {_shown(new)}" for key, old, new in changes(saved, cfg) if key not in RESUMABLE]
    if fixed:
        raise ValueError(f"cannot change when resuming: {', '.join(fixed)} (the saved model and data fix them; "
                         f"resuming can change {', '.join(RESUMABLE)})")
    last = run_dir / "ckpt" / "last.ckpt"
    if not last.is_file():
        raise ValueError(f"{run_dir}: no ckpt/last.ckpt to resume from (no validation had finished)")
    update_run_info(run_dir, config=cfg.to_dict())
    return _fit(cfg, run_dir, last, callbacks, read_tokenizer(run_dir))


RESUMABLE = ("train.max_steps", "train.lr", "model.context", "train.batch_size", "train.precision",
             "train.val_every", "train.early_stopping", "train.accelerator", "train.devices", "train.strategy",
             "train.num_nodes", "train.progress", "train.wandb")


def _same_file(a: str, b: str) -> bool:
    """The same data spelled another way (./a.txt, an absolute path)."""
    return Path(a).resolve() == Path(b).resolve()


def _shown(value) -> str:
    return repr(value) if value == "" else str(value)


def _fit(cfg: RunConfig, run_dir: Path, ckpt_path: Path | None, callbacks: list | None, tokenizer=None) -> Path:
    check(cfg)
    check_devices(cfg)
    with quiet_lightning():
        return _fit_quietly(cfg, run_dir, ckpt_path, callbacks, tokenizer)


def _fit_quietly(cfg: RunConfig, run_dir: Path, ckpt_path: Path | None, callbacks: list | None, tokenizer) -> Path:
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    corpus = load_corpus(cfg.data, tokenizer)
    kind = corpus.tokenizer
    cfg.model.vocab_size, cfg.model.frames = kind.vocab_size, kind.frames
    data = kind.datamodule(corpus, cfg.model.context, cfg.train.batch_size, cfg.train.seed, cfg.train.val_batches,
                           cfg.train.stateful)
    module = SeqModule(cfg.model.__dict__, cfg.train.__dict__, kind, data.chars_per_token)
    if cfg.train.compile:
        module.model.compile()
    if ckpt_path is None and rank_zero_only.rank == 0:
        save_run_info(run_dir, cfg, corpus.tokenizer, parameters=count_parameters(module.model))

    checkpoint = ModelCheckpoint(dirpath=run_dir / "ckpt", filename="best", monitor="val/loss", mode="min",
                                 save_last=True, save_top_k=1, auto_insert_metric_name=False)
    throughput = Throughput(cfg.train.batch_size * cfg.model.context)
    all_callbacks = [checkpoint, throughput, *(callbacks or [])]
    if cfg.train.progress:
        all_callbacks.append(StepProgressBar())
    if cfg.train.early_stopping:
        all_callbacks.append(EarlyStopping("val/loss", patience=cfg.train.early_stopping, check_finite=True))
    # Lightning's CSV writer deletes an existing metrics.csv, so a resumed run logs beside it.
    loggers = [CSVLogger(run_dir, name="logs", version="" if ckpt_path is None else f"resumed-{time.strftime('%Y%m%d-%H%M%S')}")]
    if cfg.train.wandb:
        from seqkit.tracking import SampleTable, make_wandb_logger
        logger = make_wandb_logger(cfg, run_dir)
        if logger is not None:
            loggers.append(logger)
            all_callbacks.append(SampleTable(kind, run_dir))

    trainer = pl.Trainer(
        max_steps=cfg.train.max_steps, val_check_interval=min(cfg.train.val_every, cfg.train.max_steps),
        check_val_every_n_epoch=None, limit_val_batches=cfg.train.val_batches, num_sanity_val_steps=0,
        accelerator=cfg.train.accelerator, devices=_devices_arg(cfg.train.devices), strategy=cfg.train.strategy,
        num_nodes=cfg.train.num_nodes, precision=cfg.train.precision, logger=loggers, callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()], enable_progress_bar=cfg.train.progress, enable_model_summary=False,
        log_every_n_steps=10, default_root_dir=run_dir)
    started = time.time()
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    except FloatingPointError as e:
        raise ValueError(f"training diverged: {e}; the last good checkpoint stays in {run_dir / 'ckpt'}; "
                         "try a lower --lr or more warmup") from None
    finally:
        _destroy_process_group()
    if trainer.global_rank == 0:
        best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else run_dir / "ckpt" / "last.ckpt"
        export_weights(run_dir, best)
        best_loss = _float(checkpoint.best_model_score)
        per_char = {} if best_loss is None else {  # bits per char (or byte) of the validation text scored
            f"best_val_{name}": float(value) for name, value in kind.metrics(best_loss, data.chars_per_token).items()
            if name.startswith("bits_per_") and name != "bits_per_token"}
        update_run_info(run_dir, summary={
            "steps": trainer.global_step, "best_val_loss": best_loss, **per_char,
            "train_tokens_per_second": throughput.tokens_per_second and round(throughput.tokens_per_second),
            "ms_per_step": throughput.seconds_per_step and round(1000 * throughput.seconds_per_step, 2),
            "wall_seconds": round(time.time() - started, 1), "device": str(module.device)})
    return run_dir


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temp file and renamed: a kill never leaves a truncated one."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def _destroy_process_group() -> None:
    # Without this, torch 2.13 + Lightning DDP runs can abort at interpreter exit.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _devices_arg(devices: str):
    return int(devices) if devices.lstrip("-").isdigit() else devices


def _float(x):
    return None if x is None else float(x)

