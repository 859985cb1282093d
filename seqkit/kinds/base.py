"""The interface every data kind implements, with the defaults of sequences of token ids.

A data kind is everything that differs between text ids, MIDI event ids and piano-roll frames: how it is
fitted and saved, how a corpus is read into train/val/test, what a batch is, the loss and the metrics,
how a sample is drawn from the model's output and how it is written. Code outside `seqkit/kinds/` asks
the kind object; it never compares kind names.

A model may own its output head (`model.frame_head`, e.g. a NADE over the keys of a frame): the loss and
the sampler of a kind defer to it where it exists.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from seqkit.data import Corpus, TokenData, Windows
from seqkit.generate import check_sampling, feed, sample_next

LN2 = math.log(2)


class DataKind:
    name: ClassVar[str] = ""
    end_id: int | None = None           # the token that ends a piece (EOS), where the kind has one
    format_version: ClassVar[int] = 1   # of the saved tokenizer.json; bump when its meaning changes
    frames: ClassVar[bool] = False      # model inputs are multi-hot frames (B, T, K) instead of ids (B, T)
    vocab_size: int

    # --- saving: tokenizer.json is the truth for a trained run ---------------------------------------

    def saved_settings(self) -> dict:
        return {}

    def to_dict(self) -> dict:
        return {"kind": self.name, "format_version": self.format_version, **self.saved_settings()}

    @classmethod
    def from_dict(cls, d: dict, config=None) -> DataKind:
        """A saved tokenizer.json → the kind; `config` (the run's DataConfig, from run.json) fills in the
        settings a run saved before this kind recorded them."""
        version = d.get("format_version", 1)  # written before versions were recorded: the same layout as 1
        if version != cls.format_version:
            raise ValueError(f"this run's {cls.name} tokenizer has format version {version}, but this seqkit "
                             f"reads version {cls.format_version}; use a matching seqkit")
        saved = {k: v for k, v in d.items() if k not in ("kind", "format_version")}
        return cls.from_saved(saved if config is None else {**cls.config_settings(config), **saved})

    @classmethod
    def config_settings(cls, cfg) -> dict:
        """The settings a new kind takes from `cfg` (a DataConfig), named as `saved_settings` names them."""
        return {}

    @classmethod
    def from_saved(cls, settings: dict) -> DataKind:
        return cls(**settings)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    __hash__ = None

    # --- data ----------------------------------------------------------------------------------------

    @classmethod
    def read_corpus(cls, cfg, fitted: DataKind | None = None) -> Corpus:
        """Read `cfg.source` (a DataConfig) into train/val[/test] with `fitted`, or a new kind fitted on it."""
        raise NotImplementedError

    @classmethod
    def tokenize_folder(cls, cfg) -> tuple[int, int, int]:
        """Tokenise every file of `cfg.source` into the cache `seqkit train` reads → (files, tokens, skipped)."""
        raise ValueError(f"the {cls.name} tokenizer does not tokenise folders; use --tokenizer midi or a text one")

    @classmethod
    def check_source(cls, source: str, is_music: bool) -> None:
        """Raise a one-line ValueError when `source` is the wrong sort of data for this kind."""

    def datamodule(self, corpus: Corpus, context: int, batch_size: int, seed: int, val_batches: int,
                   stateful: bool = False):
        """Batches to train and validate on; `stateful` (train.stateful): each batch lane's sequences window
        after window, for `carried_loss`, where the kind offers it."""
        if stateful:
            raise ValueError(f"train.stateful applies to piano-roll frames, not to {self.name} tokens")
        return TokenData(corpus, context, batch_size, seed, val_batches)

    def check_stateful(self, model) -> None:
        """Raise a one-line ValueError unless stateful training can carry `model`'s state per batch lane."""
        raise ValueError(f"train.stateful applies to piano-roll frames, not to {self.name} tokens")

    def carried_loss(self, model, batch, lanes):
        """Stateful training's loss: a batch of windows each continuing its lane's last one, fed from the
        state `lanes` carried (None at the start) → (loss, count, the lanes' state after it)."""
        raise NotImplementedError

    @classmethod
    def default_settings(cls, cfg) -> dict:
        """Config fields ("train.lr": 3e-3, ...) this kind trains well with for `cfg`'s model family; the CLI
        applies them under the user's settings."""
        return {}

    def chars_per_token(self, tokens: np.ndarray, windows: Windows) -> float | None:
        """Characters per scored token over `windows` of `tokens` (text only): turns nats per token into
        bits per character of exactly the text that was scored."""
        return None

    # --- model outputs -------------------------------------------------------------------------------

    def loss(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean next-token cross-entropy of a (B, T+1) batch of ids, and the number of predictions."""
        logits, _ = model(batch[:, :-1])
        targets = batch[:, 1:]
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten()), targets.new_tensor(targets.numel())

    def metrics(self, loss, chars_per_token: float | None = None) -> dict:
        """Mean loss (nats per prediction) → the metrics people compare."""
        loss = torch.as_tensor(loss)
        return {"loss": loss, "ppl": torch.exp(loss), "bits_per_token": loss / LN2}

    def sampler(self, model, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None, min_new_tokens: int | list[int] = 0):
        """A function from the model's last outputs (B, V) to the next inputs (B,): a categorical draw. Where
        the kind has an end token, it is ruled out of each row's first `min_new_tokens` draws (one for all
        rows, or one per row)."""
        held = torch.as_tensor(min_new_tokens).view(-1)
        if self.end_id is None or not held.any():
            return lambda logits: sample_next(logits, temperature, top_k, top_p, generator)
        step = 0

        def draw(logits):
            nonlocal step
            logits = logits.float().clone()
            ended = logits[:, self.end_id]
            logits[:, self.end_id] = ended.masked_fill((held > step).to(ended.device), float("-inf"))
            step += 1
            return sample_next(logits, temperature, top_k, top_p, generator)
        return draw

    def check_sampling(self, steps: int, temperature: float, top_k, top_p, num_samples: int = 1) -> None:
        check_sampling(steps, temperature, top_k, top_p, num_samples)

    def prompt_tensor(self, prompt, num_samples: int, device) -> torch.Tensor:
        """What generation starts from: (num_samples, T) ids."""
        if len(prompt) == 0:
            raise ValueError("the prompt is empty: give at least one token to start from")
        return torch.tensor([list(prompt)] * num_samples, dtype=torch.long, device=device)

    # --- evaluation ----------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model, tokens: np.ndarray, batch_size: int = 32) -> dict:
        """Loss and metrics over consecutive non-overlapping windows of `tokens`."""
        context = min(model.cfg.context, len(tokens) - 1)
        if context < 1:
            raise ValueError(f"too short to evaluate ({len(tokens)} tokens)")
        windows = Windows(tokens, context)
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for batch in DataLoader(windows, batch_size=batch_size):
            loss, n = self.loss(model, batch.to(device))
            total += loss.item() * n.item()
            count += n.item()
        loss = total / count
        metrics = self.metrics(loss, self.chars_per_token(tokens, windows))
        return {"tokens": count, **{k: float(v) for k, v in metrics.items()}}

    def eval_data(self, corpus: Corpus, split: str | None, builtin: bool):
        """What `seqkit eval` scores: `split` (train, val or test), by default the held-out split of a
        built-in set or all of a user's data."""
        parts = {"train": corpus.train, "val": corpus.val, "test": corpus.test}
        if split is None and not builtin:
            return np.concatenate([part for part in parts.values() if part is not None])
        split = split or ("test" if corpus.test is not None else "val")
        if parts.get(split) is None:
            raise ValueError(f"no {split!r} split here; choose {', '.join(k for k, v in parts.items() if v is not None)}")
        return parts[split]

    def start_prompt(self) -> list:
        """What an empty prompt starts from."""
        return [0]

    def encode_prompt(self, prompt: str) -> list[int]:
        raise ValueError("this model is primed with a file: use --prompt-file")

    def write_sample(self, new: np.ndarray, stem) -> Path | None:
        """Write a generated sample (what `generate_steps` yielded, stacked) as a file a person can open;
        kinds that are text write nothing and return None."""
        return None

    def sample_text(self, ids) -> str:
        """A sample shown as text (in W&B tables)."""
        return self.decode(ids)


def scored_log_probs(model, ids: list[int]) -> torch.Tensor:
    """Teacher-forced log p(ids[t+1] | ids[:t+1]) for every t: (len-1, V), the sequence fed in
    context-sized chunks with the state carried, so the transformer's window and the RNNs' memory span it."""
    x = torch.tensor([ids[:-1]], device=next(model.parameters()).device)
    with torch.no_grad():
        return torch.cat([outputs[0].float().log_softmax(-1) for _, outputs, _ in feed(model, x)])
