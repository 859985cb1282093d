"""Piano-roll frames as a data kind: (B, T, K) multi-hot inputs, K Bernoulli outputs per step (or the
model's own frame head, e.g. a NADE), NLL per frame, frame accuracy and F1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqkit.generate import check_sampling, feed
from seqkit.kinds.base import DataKind
from seqkit.music.benchmark_file import BENCHMARK_SUFFIXES
from seqkit.music.frame_data import FrameData, LaneState, SongBatches, lane_dim, load_frame_corpus
from seqkit.music.roll import PianoRoll
from seqkit.presets import preset_settings


def frame_nll(model, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T) NLL of each target frame: the model's frame head where it has one, else independent keys."""
    head = getattr(model, "frame_head", None)
    if head is not None:
        return head.nll(outputs, targets)
    return F.binary_cross_entropy_with_logits(outputs.float(), targets, reduction="none").sum(-1)


def most_likely_frames(model, outputs: torch.Tensor) -> torch.Tensor:
    head = getattr(model, "frame_head", None)
    return head.most_likely(outputs) if head is not None else (outputs.float() > 0).float()


class PianoRollKind(DataKind, PianoRoll):
    name = "pianoroll"
    frames = True

    def saved_settings(self) -> dict:
        return PianoRoll.saved_settings(self)  # DataKind's empty one comes first in the MRO

    @classmethod
    def config_settings(cls, cfg) -> dict:
        """No config field sets the keys: a run saved without its settings used the default 21..108."""
        return {"frames_per_quarter": cfg.frames_per_quarter, "sampling": cfg.frame_sampling}

    @classmethod
    def read_corpus(cls, cfg, fitted=None):
        return load_frame_corpus(cfg, fitted or cls(**cls.config_settings(cfg)))

    @classmethod
    def check_source(cls, source: str, is_music: bool) -> None:
        if not is_music and Path(source).suffix.lower() not in BENCHMARK_SUFFIXES:
            raise ValueError(f"{source} is neither music nor a benchmark file ({', '.join(BENCHMARK_SUFFIXES)}): "
                             "a piano-roll model reads songs of frames")

    def datamodule(self, corpus, context: int, batch_size: int, seed: int, val_batches: int, stateful: bool = False):
        return FrameData(corpus, context, batch_size, seed, val_batches, stateful)

    @classmethod
    def default_settings(cls, cfg) -> dict:
        """The "frames" preset for cfg's family: what frame models were measured to train well with."""
        return preset_settings("frames", cfg.model.family)

    def check_stateful(self, model) -> None:
        lane_dim(model)

    def carried_loss(self, model, batch, lanes):
        """Stateful training's loss of a SongLanes batch (rolls, mask, fresh, lane numbers): each lane's window
        fed from the state its previous window left (`lanes`: a LaneState, its saved form, or None at the
        start; a fresh state where a lane starts a song) → (mean NLL per frame, frames, the LaneState after)."""
        rolls, mask, fresh, numbers = batch
        context = rolls.size(1) - 1
        if isinstance(lanes, dict):  # as a checkpoint saved it
            lanes = LaneState.restored(lanes, context)
        loss, count, state = self._fed_nll(model, rolls, mask, None if lanes is None else lanes.state_for(numbers, fresh))
        return loss, count, LaneState(state, numbers, lane_dim(model), context)

    def chars_per_token(self, tokens, windows):
        return None

    def loss(self, model, batch):
        """Mean NLL per frame of (rolls (B, T+1, K), mask (B, T+1)) batches, padding masked out. A batch
        longer than the context (whole songs, in validation) is fed in chunks with the state carried."""
        loss, count, _ = self._fed_nll(model, *batch)
        return loss, count

    @staticmethod
    def _fed_nll(model, rolls, mask, state=None):
        """Mean masked NLL per frame of rolls fed from `state` in context-sized chunks → (loss, frames, state)."""
        total, count = rolls.new_zeros(()), rolls.new_zeros(())
        for start, outputs, state in feed(model, rolls[:, :-1], state):
            end = start + 1 + outputs.size(1)
            keep = mask[:, start + 1:end].float()
            total = total + (frame_nll(model, outputs, rolls[:, start + 1:end]) * keep).sum()
            count = count + keep.sum()
        return total / count.clamp(min=1), count, state

    def metrics(self, loss, chars_per_token=None) -> dict:
        loss = torch.as_tensor(loss)
        return {"loss": loss, "nll_per_frame": loss}

    def check_sampling(self, steps, temperature, top_k, top_p, num_samples=1) -> None:
        if top_k is not None or top_p is not None:
            raise ValueError("top-k and top-p do not apply to piano-roll models (each key is its own coin); "
                             "use --temperature")
        check_sampling(steps, temperature, None, None, num_samples)

    def sampler(self, model, temperature=1.0, top_k=None, top_p=None, generator=None, min_new_tokens=0):
        """Frames drawn key by key (NADE) or independently (Bernoulli); frames have no end token to hold."""
        head = getattr(model, "frame_head", None)
        if head is not None:
            return lambda outputs: head.sample(outputs, temperature, generator)
        if temperature == 0:
            return lambda logits: (logits.float() > 0).float()
        return lambda logits: torch.bernoulli(torch.sigmoid(logits.float() / temperature), generator=generator)

    def prompt_tensor(self, prompt, num_samples: int, device) -> torch.Tensor:
        """(num_samples, T, K) frames; an empty prompt starts from one silent frame."""
        frames = np.asarray(prompt, dtype=np.float32).reshape(-1, self.vocab_size)
        if not len(frames):
            frames = np.zeros((1, self.vocab_size), np.float32)
        return torch.as_tensor(frames, device=device).expand(num_samples, -1, -1)

    def start_prompt(self):
        return np.zeros((0, self.vocab_size), np.uint8)

    @torch.no_grad()
    def evaluate(self, model, songs, batch_size: int = 32) -> dict:
        """NLL per frame (nats, summed over keys), frame-level accuracy TP/(TP+FP+FN) and F1 2TP/(2TP+FP+FN)
        of the most likely frame, over every frame but the first of each song, the state carried across
        each song (Boulanger-Lewandowski et al. 2012)."""
        batches = SongBatches(songs, batch_size)
        if not len(batches):
            raise ValueError("no song of 2 or more frames to evaluate")
        device = next(model.parameters()).device
        nll = tp = fp = fn = frames = 0.0
        for rolls, mask in batches:
            rolls, mask = rolls.to(device), mask.to(device)
            for start, outputs, _ in feed(model, rolls[:, :-1]):
                end = start + 1 + outputs.size(1)
                target, keep = rolls[:, start + 1:end], mask[:, start + 1:end, None].float()
                nll += (frame_nll(model, outputs, target) * keep[..., 0]).sum().item()
                predicted = most_likely_frames(model, outputs) * keep
                tp += (predicted * target).sum().item()
                fp += (predicted * (1 - target)).sum().item()
                fn += ((1 - predicted) * target * keep).sum().item()
                frames += keep.sum().item()
        return {"nll_per_frame": nll / frames, "accuracy": tp / max(tp + fp + fn, 1e-12),
                "f1": 2 * tp / max(2 * tp + fp + fn, 1e-12), "frames": int(frames)}

    def eval_data(self, corpus, split: str | None, builtin: bool):
        return super().eval_data(corpus, split or "test", builtin)

    def write_sample(self, new, stem: Path) -> Path:
        from seqkit.music.pianoroll import PREDICTION, plot_pianoroll

        path = Path(stem).with_suffix(".mid")
        self.write_midi(new, path)
        plot_pianoroll(path.with_suffix(".png"), [("sample", self.roll_to_notes(new), PREDICTION)], title=path.stem)
        return path

    @classmethod
    def tokenize_file(cls, path: Path, cfg):
        raise ValueError("tokenize shows token sequences; use --tokenizer midi for music files")

    def write_samples(self, trained, prompt: str, sampling: dict, echo, prompt_file=None, bars: int = 4,
                      out: Path | None = None, audio: bool = False, soundfont=None) -> None:
        """MIDI files with piano-roll PNGs beside them (and WAVs with `audio`)."""
        from seqkit.music.generate import generate_roll_music, report_files

        paths = generate_roll_music(trained, prompt_file, bars, out or Path("generated.mid"), **sampling)
        report_files(paths, echo, audio, soundfont)
