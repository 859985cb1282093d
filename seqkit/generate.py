"""Sampling for every family, in layers: sample_next(logits) → generate_ids (an iterator of new tokens)."""
from __future__ import annotations

from collections.abc import Iterator

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


@torch.no_grad()
def generate_ids(model, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 num_samples: int = 1) -> Iterator[torch.Tensor]:
    """Yield (num_samples,) new token ids, one step at a time. The prompt is fed once, in chunks of the
    model's context; after that each token costs one incremental step (state carried, prefix never re-run)."""
    check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
    if not prompt:
        raise ValueError("the prompt is empty: give at least one token to start from")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    ids = torch.tensor([prompt] * num_samples, dtype=torch.long, device=device)
    state, context = None, model.cfg.context
    for start in range(0, ids.size(1), context):
        logits, state = model(ids[:, start:start + context], state)
    for _ in range(max_new_tokens):
        token = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
        yield token
        logits, state = model(token[:, None], state)
