"""Weights & Biases tracking: offline unless the user configured W&B, and never able to stop training."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

import torch
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
    """After each validation, log a short generated sample to W&B: text as a table row; music as a MIDI
    file rendered to audio (`wandb.Audio`) beside its piano roll, written under `<run>/samples/`."""

    def __init__(self, tokenizer, run_dir: Path, max_new_tokens: int = 200):
        self.tokenizer, self.run_dir, self.max_new_tokens, self.rows = tokenizer, Path(run_dir), max_new_tokens, []

    @rank_zero_only
    def on_validation_end(self, trainer, module):
        try:
            media = self.sample(trainer.global_step, module)
            for logger in trainer.loggers:
                if logger.__class__.__name__ == "WandbLogger":
                    logger.experiment.log(media)
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            warn(f"W&B sample logging failed: {e.__class__.__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")

    def sample(self, step: int, module) -> dict:
        import wandb
        from seqkit.music.audio import render_wav
        from seqkit.music.midi_file import read_midi

        kind, model = self.tokenizer, module.model
        was_training = model.training
        model.eval()
        prompt = kind.prompt_tensor(kind.start_prompt(), 1, module.device)
        draw = kind.sampler(model, generator=seeded_generator(model, 0))
        new = torch.stack(list(generate_steps(model, prompt, self.max_new_tokens, draw)), 1)[0].cpu()
        model.train(was_training)
        midi = kind.write_sample(new.numpy(), self.run_dir / "samples" / f"step{step:06d}")
        if midi is None:
            self.rows.append([step, kind.sample_text(new.tolist())])
            return {"samples": wandb.Table(columns=["step", "sample"], data=self.rows)}
        media = {"sample/piano_roll": wandb.Image(str(midi.with_suffix(".png")))}
        if read_midi(midi.read_bytes()):  # an early model may not yet write a whole note
            wav = midi.with_suffix(".wav")
            render_wav(midi, wav, soundfont=None)  # the built-in synthesizer: fast, the same on every machine
            media["sample/audio"] = wandb.Audio(str(wav), caption=f"step {step}")
        return media
