"""Weights & Biases tracking: offline unless the user configured W&B, and never able to stop training."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only

from seqkit.generate import generate_steps, seeded_generator
from seqkit.io import warn


def wandb_configured() -> bool:
    """True when the user set W&B up (a key, an explicit mode, or a login saved in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def make_wandb_logger(cfg, run_dir: Path):
    """A Lightning WandbLogger writing under the run directory, or None (with a warning) if W&B fails."""
    if not wandb_configured():
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb
        from pytorch_lightning.loggers import WandbLogger

        run = wandb.init(project=cfg.train.wandb_project, name=run_dir.name, dir=str(run_dir),
                         config=cfg.to_dict(), reinit="finish_previous",
                         settings=wandb.Settings(init_timeout=60, console="off"))
        return WandbLogger(experiment=run, save_dir=str(run_dir))
    except Exception as e:  # noqa: BLE001 - tracking must never stop training
        warn(f"W&B disabled for this run: {e.__class__.__name__}: {str(e).splitlines()[0][:200]}")
        return None


class SampleTable(Callback):
    """After each validation, log a short generated sample to W&B as a table row."""

    def __init__(self, tokenizer, max_new_tokens: int = 200):
        self.tokenizer, self.max_new_tokens, self.rows = tokenizer, max_new_tokens, []

    @rank_zero_only
    def on_validation_end(self, trainer, module):
        import wandb

        kind = self.tokenizer
        if kind.frames:
            return
        model = module.model
        was_training = model.training
        model.eval()
        prompt = kind.prompt_tensor(kind.start_prompt(), 1, module.device)
        draw = kind.sampler(model, generator=seeded_generator(model, 0))
        new = [int(t) for t in generate_steps(model, prompt, self.max_new_tokens, draw)]
        model.train(was_training)
        self.rows.append([trainer.global_step, kind.sample_text(new)])
        for logger in trainer.loggers:
            if hasattr(logger, "experiment") and logger.__class__.__name__ == "WandbLogger":
                try:
                    logger.experiment.log({"samples": wandb.Table(columns=["step", "sample"], data=self.rows)})
                except Exception as e:  # noqa: BLE001
                    warn(f"W&B sample logging failed: {e}")
