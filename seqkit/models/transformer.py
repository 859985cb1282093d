import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import ModelConfig, input_embedding, output_size


class TransformerState(NamedTuple):
    """KV cache for generation.

    position: absolute position of the next token.
    kv: per layer, the rotated keys and the values of the last context-1 tokens, each
        (B, n_heads, <= context-1, head_dim); with the next token, a query sees `context` keys.
    pad: None, or which cached keys are padding, after `Transformer.join_states` of prompts of different
        lengths (dropped once the window has slid past the last of them).
    """

    position: int
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    pad: torch.Tensor | None = None  # (B, cached keys) True where a row has no key (join_states' left padding)


def rotary_angles(position, length, head_dim, device):
    """(length, head_dim/2) rotation angles for absolute positions position..position+length-1.

    Always float32: a buffer would be cast along with the model to bf16, which cannot represent
    large positions times frequencies (the Transformer caches them as a plain attribute instead).
    """
    inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    positions = torch.arange(position, position + length, device=device, dtype=torch.float32)
    return torch.outer(positions, inv_freq)


def rotary_tables(position, length, head_dim, device):
    """(cos, signed sin), each (length, 1, head_dim) float32, for `rotate`."""
    angles = rotary_angles(position, length, head_dim, device)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1)[:, None], torch.cat([-sin, sin], dim=-1)[:, None]


def rotate(x, cos, sin):
    """Rotary position embedding of x (..., T, heads, head_dim), rotating pairs (i, i + head_dim/2):
    [x1 cos - x2 sin, x2 cos + x1 sin] as x * cos + [x2, x1] * sin with the signed tables of
    `rotary_tables`: three elementwise kernels and a copy instead of seven, bit for bit the same."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat([x2, x1], dim=-1) * sin.to(x.dtype)


def sliding_causal_mask(n_new, n_keys, context, device):
    """Bool mask (n_new, n_keys): the new queries are the last n_new keys; each sees itself and the
    keys before it, at most `context` in all."""
    query = torch.arange(n_keys - n_new, n_keys, device=device)[:, None]
    key = torch.arange(n_keys, device=device)
    return (key <= query) & (key > query - context)


def attend(q, k, v, mask, causal: bool, dropout: float):
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and torch.is_grad_enabled():
        # Training in bf16 on a CPU: ATen's flash attention is faster in float32 (forward and backward of the
        # demo's 8 batches x 4 heads x 256 x 32: 26 ms against 36; 0.35-0.85x over six shapes measured with
        # torch 2.13 on a 2-core EPYC). Forward alone is not, so sampling keeps bf16.
        with torch.autocast("cpu", enabled=False):
            y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, is_causal=causal,
                                               dropout_p=dropout)
        return y.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_embed, 3 * cfg.d_embed)
        self.proj = nn.Linear(cfg.d_embed, cfg.d_embed)
        self.attn_dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, cache, mask):
        B, T, C = x.shape
        qk, v = self.qkv(x).split([2 * C, C], dim=2)
        # Queries and keys rotated together, in (B, T, heads, head_dim) order: one pass, no transposed copies.
        qk = rotate(qk.view(B, T, 2 * self.n_heads, -1), cos, sin).transpose(1, 2)
        q, k = qk.split(self.n_heads, dim=1)
        v = v.view(B, T, self.n_heads, -1).transpose(1, 2)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        y = attend(q, k, v, mask, cache is None, self.attn_dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.proj(y)), (k, v)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_embed)
        self.attn = SelfAttention(cfg)
        self.ln_mlp = nn.LayerNorm(cfg.d_embed)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_embed, 4 * cfg.d_embed),
            nn.GELU(),
            nn.Linear(4 * cfg.d_embed, cfg.d_embed),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x, cos, sin, cache, mask):
        attended, kv = self.attn(self.ln_attn(x), cos, sin, cache, mask)
        x = x + attended
        return x + self.mlp(self.ln_mlp(x)), kv


class Transformer(nn.Module):
    """Causal pre-norm decoder with rotary positions and a sliding-window KV cache (TransformerState).

    Without a state, a call takes at most `context` tokens. With one, any number of tokens may
    follow, and each query attends to at most `context` keys, so generation can run forever.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = input_embedding(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_embed)
        self.head = nn.Linear(cfg.d_embed, output_size(cfg), bias=False)
        if cfg.tie_weights and not cfg.frames:
            self.head.weight = self.embed.weight
        self.apply(self._init_weights)
        for block in self.blocks:  # residual projections scaled as in GPT-2
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    def _rotary_tables(self, position, length, device):
        # Training asks for the same positions every step: keep the last tables. Not a buffer, so never
        # cast to bf16 or saved; an inference-mode tensor is never handed to autograd outside that mode.
        # (A compiled graph computes them itself: Dynamo cannot trace is_inference_mode_enabled.)
        head_dim = self.cfg.d_embed // self.cfg.n_heads
        if torch.compiler.is_compiling():
            return rotary_tables(position, length, head_dim, device)
        key = (position, length, device, torch.is_inference_mode_enabled())
        if getattr(self, "_rotary", (None,))[0] != key:
            self._rotary = key, rotary_tables(position, length, head_dim, device)
        return self._rotary[1]

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, x, state=None):
        T = x.size(1)
        if state is None:
            if T > self.cfg.context:
                raise ValueError(
                    f"transformer got {T} tokens without a state; at most context={self.cfg.context} "
                    "(pass the returned state to feed longer sequences in pieces)"
                )
            position, caches, mask = 0, [None] * len(self.blocks), None
        else:
            position, caches, pad = state
            n_keys = caches[0][0].size(2) + T
            # One new token with at most `context` keys sees them all: no mask, SDPA's fastest path.
            sees_all = T == 1 and n_keys <= self.cfg.context
            mask = None if sees_all else sliding_causal_mask(T, n_keys, self.cfg.context, x.device)
            if pad is not None:
                pad = torch.cat([pad, pad.new_zeros(pad.size(0), T)], dim=1)
                mask = ~pad[:, None, None, :] & (True if mask is None else mask)
        cos, sin = self._rotary_tables(position, T, x.device)

        h = self.dropout(self.embed(x))
        new_caches = []
        keep = self.cfg.context - 1
        for block, cache in zip(self.blocks, caches):
            h, (k, v) = block(h, cos, sin, cache, mask)
            start = max(k.size(2) - keep, 0)
            new_caches.append((k[:, :, start:], v[:, :, start:]))
        logits = self.head(self.ln_final(h))
        if state is not None and state.pad is not None:
            pad = pad[:, max(pad.size(1) - keep, 0):]
            pad = pad if pad.any() else None
        return logits, TransformerState(position + T, tuple(new_caches), None if state is None else pad)

    @staticmethod
    def join_states(states: list[TransformerState]) -> TransformerState:
        """One batch state from the states of rows fed separately, however long each row's prompt: caches
        padded on the left (masked), and each row's keys rotated on by the positions it is behind the
        furthest row. Rotary attention depends only on key-query distances, so every row then scores as
        it did alone (to float rounding) while all share one position."""
        position = max(s.position for s in states)
        length = max(s.kv[0][0].size(2) for s in states)
        layers, pads = [[] for _ in states[0].kv], []
        for s in states:
            (batch, _, cached, head_dim), device = s.kv[0][0].shape, s.kv[0][0].device
            behind, missing = position - s.position, length - cached
            cos, sin = rotary_tables(behind, 1, head_dim, device)
            for layer, (k, v) in zip(layers, s.kv):
                k = rotate(k.transpose(1, 2), cos, sin).transpose(1, 2)  # rotate takes (.., T, heads, dim)
                layer.append(tuple(F.pad(t, (0, 0, missing, 0)) for t in (k, v)))
            pad = s.pad if s.pad is not None else torch.zeros(batch, cached, dtype=torch.bool, device=device)
            pads.append(F.pad(pad, (missing, 0), value=True))
        kv = tuple((torch.cat([k for k, _ in rows]), torch.cat([v for _, v in rows])) for rows in layers)
        pad = torch.cat(pads)
        return TransformerState(position, kv, pad if pad.any() else None)
