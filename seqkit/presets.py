"""Named run presets: small dicts of config fields over RunConfig's defaults, with per-family extras.

    preset("small", "transformer", max_steps=300)   # any field by name or as section.field
"""
from __future__ import annotations

from seqkit.config import RunConfig, set_field

PRESETS: dict[str, dict[str, object]] = {
    # the unit tests: a few seconds per run on a CPU
    "tiny": {"model.context": 16, "model.window": 4, "model.d_embed": 16, "model.d_hidden": 32,
             "model.n_layers": 1, "model.n_heads": 2, "train.max_steps": 6, "train.batch_size": 8,
             "train.val_every": 3, "train.val_batches": 2, "train.lr": 3e-3, "train.warmup_steps": 2,
             "train.progress": False, "train.accelerator": "cpu"},
    # compare and doctor: all six families train 300 steps in a few minutes on a laptop CPU
    "small": {"model.context": 64, "model.window": 8, "model.d_embed": 32, "model.d_hidden": 128,
              "model.n_layers": 1, "model.n_heads": 4, "train.batch_size": 32, "train.lr": 3e-3,
              "train.warmup_steps": 30, "train.val_every": 50, "train.val_batches": 10, "train.progress": False},
    # `seqkit demo text`
    "demo-text": {"model.context": 64, "train.lr": 3e-3, "train.max_steps": 300, "train.val_every": 100},
    # `seqkit demo predict-song` on the Bach chorales: a context that keeps a four-bar prompt (80-160 tokens)
    # and what follows in view, every piece moved onto C major's scale by its opening bars (next-pitch top-1
    # 0.58 against 0.46 with pieces transposed into every key instead; pitch-class distance 0.18 against
    # 0.21 with the opening's Krumhansl-Schmuckler key moved to C major / A minor), no dropout, bf16 where
    # the machine computes it natively (demo_config; attention itself in float32, see transformer.attend):
    # about 30% faster steps here (81-90 ms against 117-129), so more of them in the 5 minutes (README)
    "demo": {"data.source": "bach", "data.tokenizer": "midi", "data.normalize_key": True, "model.context": 256,
             "model.window": 16, "model.d_embed": 64, "model.d_hidden": 256, "model.n_layers": 2,
             "model.dropout": 0.0, "train.max_steps": 1600, "train.batch_size": 8, "train.lr": 3e-3,
             "train.warmup_steps": 50, "train.val_every": 400, "train.val_batches": 20,
             "train.precision": "bf16-mixed"},
    # bench/bench.py's family table
    "bench": {"model.context": 64, "model.window": 16, "model.d_embed": 64, "model.d_hidden": 256,
              "model.n_layers": 2, "model.n_heads": 4, "train.batch_size": 32, "train.lr": 3e-3,
              "train.val_batches": 50, "train.warmup_steps": 20, "train.progress": False,
              "train.accelerator": "cpu"},
    # piano-roll frames: what `seqkit train SONGS --tokenizer pianoroll` trains with unless told otherwise
    # (PianoRollKind.default_settings). Measured with bench/bench_poly.py (LSTM, test NLL/frame, chorales
    # exported as JSB was): stateful beats random windows; NADE beats Bernoulli on every set at hand; training
    # songs transposed into other keys (data.augment) need the 3,000 steps, then pay with lr 5e-3 (chorales,
    # Bernoulli: 8.55 at 1,500 steps without; 8.53 at 3,000 without; 8.20 with, lr 3e-3; 7.83 with, lr 5e-3).
    "frames": {"model.context": 64, "model.d_embed": 64, "model.d_hidden": 256, "model.n_layers": 1,
               "model.dropout": 0.3, "model.frame_head": "nade", "train.lr": 5e-3, "train.batch_size": 32,
               "train.max_steps": 3000, "train.stateful": True, "data.augment": True},
}
FAMILY_EXTRAS: dict[tuple[str, str], dict[str, object]] = {
    ("small", "transformer"): {"model.d_embed": 64, "model.n_layers": 2},
    ("demo", "transformer"): {"model.d_embed": 128, "model.n_heads": 4},
    ("bench", "transformer"): {"model.d_embed": 128},
    ("frames", "transformer"): {"train.stateful": False},  # its KV cache has no state per lane to carry
}


def preset_settings(name: str, family: str = "lstm") -> dict[str, object]:
    """The fields preset `name` sets for `family`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {**PRESETS[name], **FAMILY_EXTRAS.get((name, family), {})}


def preset(name: str, family: str = "lstm", **overrides) -> RunConfig:
    """RunConfig of preset `name` for `family`; `overrides` set any field (`d_hidden=64`, `train.lr=1e-3`)."""
    cfg = RunConfig()
    cfg.model.family = family
    for key, value in preset_settings(name, family).items():
        set_field(cfg, key, value)
    for key, value in overrides.items():
        set_field(cfg, key, value)
    return cfg
