"""The Python API around a trained run: `seqkit.load(run_dir)` → generate / evaluate."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from seqkit.checkpoint import load_run
from seqkit.generate import generate_ids
from seqkit.models import count_parameters


def start_ids(tokenizer) -> list[int]:
    """What an empty prompt starts from: BOS for music, a line break for text."""
    if hasattr(tokenizer, "bos_id"):
        return [tokenizer.bos_id]
    try:
        return tokenizer.encode("\n")
    except ValueError:
        return [0]


class TrainedModel:
    def __init__(self, run_dir: Path, config, tokenizer, model, info: dict):
        self.run_dir, self.config, self.tokenizer, self.model, self.info = run_dir, config, tokenizer, model, info

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def to(self, device) -> TrainedModel:
        self.model.to(device)
        return self

    def encode_prompt(self, prompt) -> list[int]:
        if prompt is None or prompt == "":
            return start_ids(self.tokenizer)
        return list(prompt) if not isinstance(prompt, str) else self.tokenizer.encode(prompt)

    def stream(self, prompt: str | list[int] | None = None, max_new_tokens: int = 200, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               num_samples: int = 1) -> Iterator[torch.Tensor]:
        """Yield (num_samples,) new token ids one step at a time."""
        yield from generate_ids(self.model, self.encode_prompt(prompt), max_new_tokens, temperature,
                                top_k, top_p, seed, num_samples)

    def generate_ids(self, prompt=None, **sampling) -> list[list[int]]:
        """Sample continuations; returns prompt + new ids for each sample."""
        prompt_ids = self.encode_prompt(prompt)
        steps = list(self.stream(prompt_ids, **sampling))
        new = torch.stack(steps, 1).tolist() if steps else [[]]
        return [prompt_ids + row for row in new]

    def generate(self, prompt: str | None = None, **sampling) -> list[str]:
        """Sample text continuations (prompt included). Sampling: max_new_tokens, temperature, top_k, top_p,
        seed, num_samples."""
        return [self.tokenizer.decode(ids) for ids in self.generate_ids(prompt, **sampling)]

    @torch.no_grad()
    def evaluate(self, source: str, split: str | None = None, batch_size: int = 32) -> dict:
        """Loss, perplexity and bits per token (and per char for text) on a data set, with this run's tokenizer.
        `split` picks train/val/test of a split corpus; by default all of a user's data, or the
        held-out split of a built-in one."""
        from seqkit.data import Windows, load_corpus
        from seqkit.module import metrics_from_loss, sequence_loss

        check_data_fits(self.tokenizer, source)
        data_cfg = replace(self.config.data, source=source)
        corpus = load_corpus(data_cfg, self.tokenizer)
        if self.tokenizer.kind == "pianoroll":  # songs of frames: NLL per frame, accuracy, F1
            from seqkit.music.frames import evaluate_frames
            songs = pick_split(corpus, source, split or "test")
            return evaluate_frames(self.model, songs, self.model.cfg.context, batch_size)
        tokens = pick_split(corpus, source, split)
        context = self.model.cfg.context
        if len(tokens) < context + 1:
            context = len(tokens) - 1
        if context < 1:
            raise ValueError(f"{source}: too short to evaluate ({len(tokens)} tokens)")
        device = next(self.model.parameters()).device
        total, count = 0.0, 0
        for batch in DataLoader(Windows(tokens, context), batch_size=batch_size):
            loss, n = sequence_loss(self.model, batch.to(device), False)
            total += loss.item() * n.item()
            count += n.item()
        loss = total / count
        return {"tokens": count, **{k: float(v) for k, v in metrics_from_loss(loss, corpus.chars_per_token).items()}}


def check_data_fits(tokenizer, source: str) -> None:
    from seqkit.data import is_music
    from seqkit.tokenizers import TEXT_KINDS

    if tokenizer.kind == "midi" and not is_music(source):
        raise ValueError(f"{source} is not music, but this run's tokenizer is midi: evaluate it on MIDI/score data")
    if tokenizer.kind in TEXT_KINDS and is_music(source):
        raise ValueError(f"{source} is music, but this run's tokenizer is {tokenizer.kind} (text): evaluate it on text")


def pick_split(corpus, source: str, split: str | None):
    from seqkit.data import MUSIC_BUILTINS, TEXT_BUILTINS
    import numpy as np

    if split is None:
        if source in TEXT_BUILTINS + MUSIC_BUILTINS:
            split = "test" if corpus.test is not None else "val"
        else:
            parts = [corpus.train, corpus.val] + ([corpus.test] if corpus.test is not None else [])
            return np.concatenate(parts)
    tokens = getattr(corpus, split, None) if split in ("train", "val", "test") else None
    if tokens is None:
        raise ValueError(f"no {split!r} split in {source}; choose train, val" + (", test" if corpus.test is not None else ""))
    return tokens


def load(run_dir: str | Path, device: str | None = None) -> TrainedModel:
    """Load a run directory written by `seqkit train` (weights-only, no code executed)."""
    model = TrainedModel(*load_run(run_dir))
    return model.to(device) if device else model
