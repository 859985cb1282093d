"""The configuration every model family reads, and the pieces several families share."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    family: str = "lstm"          # one of FAMILIES
    vocab_size: int = 0           # number of token ids (set from the tokenizer); for frame input, the number of keys
    frames: bool = False          # True: inputs are float multi-hot frames (B, T, vocab_size); outputs model the next frame as set by frame_head
    frame_head: str = "bernoulli"  # frames only: bernoulli (vocab_size independent key logits) | nade (keys low to high, each given those below; nade.py)
    nade_hidden: int = 128        # frame_head=nade: hidden units H of the NADE; the model then outputs vocab_size + H numbers per step
    context: int = 128            # training sequence length; the transformer's attention window
    window: int = 8               # k previous tokens seen by ar and ffwd
    d_embed: int = 64             # input embedding width (transformer: model width)
    d_hidden: int = 256           # hidden width (rnn hidden size; ffwd hidden layer width; transformer MLP is 4*d_embed, ignore d_hidden there)
    n_layers: int = 2             # ffwd hidden layers; rnn/lstm layers; transformer blocks
    n_heads: int = 4              # transformer only
    dropout: float = 0.0
    activation: str = "tanh"      # tanh | relu | leaky_relu | sigmoid   (ffwd, elman, jordan; ignored by ar (linear), lstm, transformer(gelu))
    tie_weights: bool = True      # transformer: tie input embedding and output head (only when not frames)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


def input_embedding(cfg: ModelConfig, extra_ids: int = 0) -> nn.Module:
    """Token ids -> nn.Embedding (with `extra_ids` spare rows); frames -> a linear map of the multi-hot frame."""
    if cfg.frames:
        # No bias: a frame embeds as the sum of its active keys' columns, as ids embed as one row.
        return nn.Linear(cfg.vocab_size, cfg.d_embed, bias=False)
    return nn.Embedding(cfg.vocab_size + extra_ids, cfg.d_embed)


def output_size(cfg: ModelConfig) -> int:
    """Numbers a model outputs per step: vocab_size logits, or a NADE's conditioning vector [b_v, b_h]."""
    if cfg.frames and cfg.frame_head == "nade":
        return cfg.vocab_size + cfg.nade_hidden
    return cfg.vocab_size


def output_head(d_in: int, cfg: ModelConfig) -> nn.Linear:
    """Linear map to output_size(cfg) numbers, initialised small so the first predictions are near uniform."""
    head = nn.Linear(d_in, output_size(cfg))
    nn.init.normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return head


class WindowEmbedding(nn.Module):
    """Embeds each position together with the window-1 inputs before it: (B, T[, V]) -> (B, T, window * d_embed).

    The state is the last window-1 inputs; before the start of a sequence the window holds a padding
    input (the extra embedding row `vocab_size` for ids, an all-zero frame for frames).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = input_embedding(cfg, extra_ids=1)
        self.out_features = cfg.window * cfg.d_embed

    def forward(self, x: torch.Tensor, history: torch.Tensor | None = None):
        if history is None:
            history = self.padding(x)
        inputs = torch.cat([history, x], dim=1)
        windows = self.embed(inputs).unfold(1, self.cfg.window, 1)  # (B, T, d_embed, window)
        features = windows.transpose(2, 3).flatten(2)  # oldest input first
        return features, inputs[:, inputs.size(1) - (self.cfg.window - 1):]

    def padding(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.frames:
            return x.new_zeros(x.size(0), self.cfg.window - 1, self.cfg.vocab_size)
        return x.new_full((x.size(0), self.cfg.window - 1), self.cfg.vocab_size)


class BatchState:
    """A family whose state is a tensor, or tuples of them, each with its batch along `state_batch_dim`
    (every family but the transformer, whose cache position is shared by the batch)."""
    state_batch_dim: int

    @classmethod
    def join_states(cls, states: list):
        """One batch state from the states of rows fed separately, for `seqkit.generate.generate_joined`."""
        if isinstance(states[0], tuple):
            return tuple(cls.join_states(list(parts)) for parts in zip(*states))
        return torch.cat(states, cls.state_batch_dim)
