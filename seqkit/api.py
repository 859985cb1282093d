"""The Python API around a trained run: `seqkit.load(run_dir)` → generate / stream / evaluate."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from seqkit.checkpoint import load_run
from seqkit.data import MUSIC_BUILTINS, TEXT_BUILTINS
from seqkit.generate import check_min_new_tokens, generate_joined, generate_steps, seeded_generator
from seqkit.kinds import check_source, load_corpus
from seqkit.models import count_parameters


class TrainedModel:
    """A trained run: `tokenizer` is its data kind (text, MIDI events or piano-roll frames)."""

    def __init__(self, run_dir: Path, config, tokenizer, model, info: dict):
        self.run_dir, self.config, self.tokenizer, self.model, self.info = run_dir, config, tokenizer, model, info

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def to(self, device) -> TrainedModel:
        self.model.to(device)
        return self

    def encode_prompt(self, prompt):
        """A prompt as the model's inputs: text is encoded, ids (or frames) pass through, nothing starts
        from the kind's start (a line break for text, BOS for MIDI, a silent frame for frames)."""
        if prompt is None or (isinstance(prompt, str) and not prompt):
            return self.tokenizer.start_prompt()
        return self.tokenizer.encode_prompt(prompt) if isinstance(prompt, str) else list(prompt)

    def stream(self, prompt=None, max_new_tokens: int = 200, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None, num_samples: int = 1,
               min_new_tokens: int = 0) -> Iterator[torch.Tensor]:
        """Yield the next (num_samples,) token ids (or (num_samples, K) frames), one step at a time; the end
        token (MIDI's EOS) is not drawn before `min_new_tokens`."""
        kind = self.tokenizer
        kind.check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
        check_min_new_tokens(min_new_tokens, max_new_tokens)
        device = next(self.model.parameters()).device
        x = kind.prompt_tensor(self.encode_prompt(prompt), num_samples, device)
        draw = kind.sampler(self.model, temperature, top_k, top_p, seeded_generator(self.model, seed), min_new_tokens)
        yield from generate_steps(self.model, x, max_new_tokens, draw)

    def generate_ids(self, prompt=None, **sampling) -> list[list[int]]:
        """Sample continuations; returns prompt + new ids for each sample."""
        prompt_ids = self.encode_prompt(prompt)
        steps = list(self.stream(prompt_ids, **sampling))
        new = torch.stack(steps, 1).tolist() if steps else [[]]
        return [list(prompt_ids) + row for row in new]

    def continue_each(self, prompts: list, max_new_tokens: int | list[int] = 200, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                      min_new_tokens: int | list[int] = 0) -> list[list[int]]:
        """One sampled continuation of each prompt (prompt + new ids), `max_new_tokens` and `min_new_tokens`
        (no end token before) for all or one per prompt: each prompt is fed alone, then all step together as
        one batch (many times faster than one prompt after another)."""
        if not prompts:
            return []
        kind = self.tokenizer
        lengths, minimums = (list(n) if isinstance(n, (list, tuple)) else [n] * len(prompts)
                             for n in (max_new_tokens, min_new_tokens))
        for values, what in ((lengths, "lengths"), (minimums, "minimum lengths")):
            if len(values) != len(prompts):
                raise ValueError(f"{len(values)} {what} for {len(prompts)} prompts")
        for steps, least in zip(lengths, minimums):
            kind.check_sampling(steps, temperature, top_k, top_p)
            check_min_new_tokens(least, steps)
        device = next(self.model.parameters()).device
        rows = [kind.prompt_tensor(self.encode_prompt(prompt), 1, device) for prompt in prompts]
        draw = kind.sampler(self.model, temperature, top_k, top_p, seeded_generator(self.model, seed), minimums)
        new = torch.stack(list(generate_joined(self.model, rows, max(lengths), draw)), 1).tolist()
        return [row[0].tolist() + ids[:steps] for row, ids, steps in zip(rows, new, lengths)]

    def generate(self, prompt: str | None = None, **sampling) -> list[str]:
        """Sample text continuations (prompt included). Sampling: max_new_tokens, temperature, top_k, top_p,
        seed, num_samples."""
        return [self.tokenizer.decode(ids) for ids in self.generate_ids(prompt, **sampling)]

    @torch.no_grad()
    def evaluate(self, source: str, split: str | None = None, batch_size: int = 32) -> dict:
        """This run's metrics on a data set, read with its own tokenizer: loss, perplexity, bits per token
        and per char for text; NLL per frame, accuracy and F1 for frames. `split` picks train/val/test of
        a split corpus; by default all of a user's data, or the held-out split of a built-in one."""
        check_source(type(self.tokenizer), source)
        corpus = load_corpus(replace(self.config.data, source=source), self.tokenizer)
        data = self.tokenizer.eval_data(corpus, split, source in TEXT_BUILTINS + MUSIC_BUILTINS)
        was_training = self.model.training
        self.model.eval()
        try:
            return self.tokenizer.evaluate(self.model, data, batch_size)
        finally:
            self.model.train(was_training)


def load(run_dir: str | Path, device: str | None = None) -> TrainedModel:
    """Load a run directory written by `seqkit train` (weights-only, no code executed)."""
    model = TrainedModel(*load_run(run_dir))
    return model.to(device) if device else model
