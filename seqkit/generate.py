"""Sampling for every family and data kind, in layers: `feed` (a sequence through the model in
context-sized chunks) → a kind's sampler (`sample_next` for ids) → `generate_steps`, the one generation loop."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None,
                   num_samples: int = 1) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max new tokens must be at least 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")
    if num_samples < 1:
        raise ValueError(f"number of samples must be at least 1, got {num_samples}")


def check_min_new_tokens(min_new_tokens: int, max_new_tokens: int) -> None:
    if not 0 <= min_new_tokens <= max_new_tokens:
        raise ValueError(f"min new tokens must be between 0 and max new tokens ({max_new_tokens}), got {min_new_tokens}")


def numbered(out: Path, n: int) -> list[Path]:
    """Where samples go: `out` for one sample; out_1, out_2, ... for several."""
    return [out] if n == 1 else [out.with_name(f"{out.stem}_{i + 1}{out.suffix}") for i in range(n)]


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) logits → (B,) token ids. Temperature 0 is greedy; top-k, then top-p (nucleus) filtering."""
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def feed(model, x: torch.Tensor, state=None) -> Iterator[tuple[int, torch.Tensor, object]]:
    """Feed x (B, T[, K]) through the model in chunks of its context, carrying the state, so every output
    sees the whole sequence before it: yields (chunk start, outputs of the chunk, state after it)."""
    context = model.cfg.context
    for start in range(0, x.size(1), context):
        outputs, state = model(x[:, start:start + context], state)
        yield start, outputs, state


def seeded_generator(model, seed: int | None) -> torch.Generator:
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    return generator


@torch.no_grad()
def generate_steps(model, prompt: torch.Tensor, steps: int, draw: Callable) -> Iterator[torch.Tensor]:
    """The generation loop of every kind: feed `prompt` (B, T[, K]) once, then yield `steps` new inputs,
    each drawn from the last outputs by `draw` (a kind's sampler) and fed back as one incremental step
    (the state carried, the prefix never re-run)."""
    yield from _steps(model, *_fed(model, prompt), steps, draw)


@torch.no_grad()
def generate_joined(model, prompts: list[torch.Tensor], steps: int, draw: Callable) -> Iterator[torch.Tensor]:
    """`generate_steps` for prompts of different lengths ((1, T_i[, K]) each, a row apiece): each is fed
    alone, then every row steps together in one batch (the model's `join_states`)."""
    last, states = zip(*(_fed(model, prompt) for prompt in prompts))
    yield from _steps(model, torch.cat(last), model.join_states(list(states)), steps, draw)


def _fed(model, prompt: torch.Tensor):
    """The last outputs (B, V) and the state after feeding the whole prompt."""
    for _, outputs, state in feed(model, prompt):
        pass
    return outputs[:, -1], state


def _steps(model, outputs: torch.Tensor, state, steps: int, draw: Callable) -> Iterator[torch.Tensor]:
    for step in range(steps):
        new = draw(outputs)
        yield new
        if step + 1 < steps:
            outputs, state = model(new[:, None], state)
            outputs = outputs[:, -1]
