"""Next-token models. Every family is built from a ModelConfig and has the same interface:

    logits, state = model(x, state=None)

x is (B, T) token ids, or (B, T, vocab_size) float multi-hot frames when cfg.frames; logits are
(B, T, vocab_size). Feeding a sequence in pieces, passing the returned state back each time, gives
the same logits as one call over the whole sequence, at O(1) model work per new token.

    state = model.join_states([state_1, state_2, ...])

makes one batch state of the states of rows fed separately (prompts of different lengths), so that the
rows then step together: `TrainedModel.continue_each`.

With cfg.frame_head == "nade" the logits are (B, T, vocab_size + nade_hidden) conditioning vectors of
the NADE that the model carries as `model.frame_head` (None for every other config); its nll, sample
and most_likely turn them into likelihoods and frames (nade.py).
"""

from torch import nn

from .ar import LinearAR
from .common import ACTIVATIONS, ModelConfig
from .elman import ElmanRNN
from .ffwd import FeedForward
from .jordan import JordanRNN
from .lstm import LSTM
from .nade import NADE
from .transformer import Transformer, TransformerState

FAMILIES: dict[str, type[nn.Module]] = {
    "ar": LinearAR,
    "ffwd": FeedForward,
    "jordan": JordanRNN,
    "elman": ElmanRNN,
    "lstm": LSTM,
    "transformer": Transformer,
}

SIZES = ("vocab_size", "context", "window", "d_embed", "d_hidden", "n_layers", "n_heads", "nade_hidden")
FRAME_HEADS = ("bernoulli", "nade")


def validate(cfg: ModelConfig) -> None:
    """Raise ValueError naming the first thing wrong with cfg."""
    if cfg.family not in FAMILIES:
        raise ValueError(f"unknown model family {cfg.family!r}; choose one of: {', '.join(FAMILIES)}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {cfg.activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    for name in SIZES:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.frame_head not in FRAME_HEADS:
        raise ValueError(f"unknown frame_head {cfg.frame_head!r}; choose one of: {', '.join(FRAME_HEADS)}")
    if cfg.frame_head == "nade" and not cfg.frames:
        raise ValueError("frame_head=nade needs frames=True (piano-roll input); token models use a softmax")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.family == "transformer":
        if cfg.d_embed % cfg.n_heads:
            raise ValueError(f"n_heads ({cfg.n_heads}) must divide d_embed ({cfg.d_embed})")
        if (cfg.d_embed // cfg.n_heads) % 2:
            raise ValueError(
                f"d_embed / n_heads must be even for rotary position embeddings, got {cfg.d_embed // cfg.n_heads}"
            )


def build_model(cfg: ModelConfig) -> nn.Module:
    validate(cfg)
    model = FAMILIES[cfg.family](cfg)
    model.frame_head = NADE(cfg) if cfg.frame_head == "nade" else None  # a submodule: trained and saved with the model
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable values; a tied weight counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "FAMILIES",
    "FRAME_HEADS",
    "ModelConfig",
    "NADE",
    "TransformerState",
    "build_model",
    "count_parameters",
    "validate",
]
