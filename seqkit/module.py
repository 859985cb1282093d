"""The one LightningModule: next-token loss, metrics, optimizers and schedule for every model family."""
from __future__ import annotations

import math

import pytorch_lightning as pl
import torch

from seqkit.config import TrainConfig
from seqkit.models import ModelConfig, build_model


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup, then cosine decay from 1 to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class SeqModule(pl.LightningModule):
    """`kind` (a seqkit.kinds data kind) says what a batch is and gives the loss and the metrics."""

    def __init__(self, model: dict, train: dict, kind, chars_per_token: float | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["kind"])
        self.model_cfg = ModelConfig(**model)
        self.cfg = TrainConfig(**train)
        self.model = build_model(self.model_cfg)
        self.kind, self.chars_per_token = kind, chars_per_token
        self._val_sum = self._val_count = None
        self.lanes = None  # train.stateful: the model's state after each batch lane's last window
        if self.cfg.stateful:
            kind.check_stateful(self.model)

    def forward(self, x, state=None):
        return self.model(x, state)

    def training_step(self, batch, batch_idx):
        if self.cfg.stateful:
            loss, _, self.lanes = self.kind.carried_loss(self.model, batch, self.lanes)
        else:
            loss, _ = self.kind.loss(self.model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.global_step}")
        if self._logging_step():
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        if self.cfg.l1 > 0:
            loss = loss + self.cfg.l1 * sum(p.abs().sum() for p in self.parameters() if p.dim() >= 2)
        return loss

    def _logging_step(self) -> bool:
        # Lightning writes step metrics every log_every_n_steps; a self.log on the other steps costs about a
        # millisecond each (5% of a small model's step on a CPU) for nothing.
        step = self.global_step + 1
        return step % self.trainer.log_every_n_steps == 0 or step >= self.trainer.max_steps

    def on_train_start(self):
        # A resumed run may have been given a new peak lr: rescale the restored schedule to it.
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            scheduler.base_lrs = [self.cfg.lr] * len(scheduler.base_lrs)
            lr = self.cfg.lr * self.lr_factor(scheduler.last_epoch)
            for group in scheduler.optimizer.param_groups:
                group["lr"] = lr

    def lr_factor(self, step: int) -> float:
        return lr_factor(step, self.cfg.warmup_steps, self.cfg.max_steps, self.cfg.min_lr_ratio)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step >= self.trainer.max_steps:
            self.trainer.should_stop = True  # makes Lightning validate the final weights too

    def on_validation_epoch_start(self):
        self._val_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        self._val_count = torch.zeros((), device=self.device, dtype=torch.float64)

    def validation_step(self, batch, batch_idx):
        loss, count = self.kind.loss(self.model, batch)
        self._val_sum += loss.double() * count
        self._val_count += count

    def on_validation_epoch_end(self):
        total = self.trainer.strategy.reduce(self._val_sum, reduce_op="sum")
        count = self.trainer.strategy.reduce(self._val_count, reduce_op="sum")
        loss = (total / count.clamp(min=1)).float()
        for name, value in self.kind.metrics(loss, self.chars_per_token).items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", sync_dist=False)

    def on_save_checkpoint(self, checkpoint):
        # Dropout's random stream, so a resumed run continues exactly where the saved one was.
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["cuda_rng_state"] = torch.cuda.get_rng_state()
        if self.lanes is not None:  # every process's lanes, so a resumed stateful run carries on exactly
            checkpoint["lanes"] = self.lanes.saved(self.all_gather)

    def on_load_checkpoint(self, checkpoint):
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state(checkpoint["cuda_rng_state"])
        self.lanes = checkpoint.get("lanes")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # One pass computes the norm for logging and clips with it.
        norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.cfg.grad_clip or float("inf"))
        if self._logging_step():
            self.log("train/grad_norm", norm)

    def configure_optimizers(self):
        matrices = [p for p in self.parameters() if p.dim() >= 2]
        others = [p for p in self.parameters() if p.dim() < 2]
        groups = [{"params": matrices, "weight_decay": self.cfg.weight_decay},
                  {"params": others, "weight_decay": 0.0}]
        if self.cfg.optimizer == "adamw":
            # fused: one kernel for all parameters, about 4x faster optimizer steps on a CPU too
            optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr, betas=self.cfg.betas,
                                          fused=self.device.type in ("cuda", "cpu"))
        elif self.cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.cfg.lr, momentum=self.cfg.momentum,
                                        nesterov=self.cfg.nesterov)
        else:
            raise ValueError(f"unknown optimizer {self.cfg.optimizer!r}; choose adamw or sgd")
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.lr_factor(step))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
