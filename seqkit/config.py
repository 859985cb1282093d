"""Run configuration: dataclasses are the source of truth; YAML files and `key=value` overrides only fill them."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seqkit.models import ModelConfig
from seqkit.music.roll import SAMPLINGS
from seqkit.music.tokenizer import KEY_ESTIMATES


@dataclass
class DataConfig:
    """What to read and how to fit a new tokenizer; a trained run's tokenizer.json is the truth for it."""
    source: str = "pydoc"         # a built-in name (pydoc, bach), a file or a folder
    tokenizer: str = "char"       # char | byte | bpe | unigram | midi | pianoroll
    vocab_size: int = 1000        # bpe / unigram only
    val_fraction: float = 0.1
    cache_dir: str = "data/cache"
    augment: bool = False         # music: transpose training pieces into other keys
    workers: int = 0              # processes that tokenise a corpus; 0: every core
    frames_per_quarter: int = 2   # pianoroll: time resolution of MIDI input
    frame_sampling: str = "snap"  # pianoroll: snap (every note) | start (notes sounding at each frame's start, as JSB)
    grid: int = 12                # midi: positions per quarter note (12: sixteenths and eighth-note triplets)
    velocity_bins: int = 0        # midi: 0 leaves dynamics out (every note at 64)
    tempo: bool = False           # midi: tempo tokens
    time_signature: bool = True   # midi: time-signature tokens
    programs: bool = False        # midi: a program token per note, keeping instruments (and parts) apart
    max_duration_quarters: int = 8  # midi: longer notes are cut to this
    pitch_low: int = 0            # midi: notes outside pitch_low..pitch_high are left out
    pitch_high: int = 127
    normalize_key: bool = False   # midi: transpose each piece by its opening bars, into C major / A minor
    key_estimate: str = "scale"   # midi: how: scale (most of the opening on C major's scale) | krumhansl (its key)


@dataclass
class TrainConfig:
    max_steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-4
    optimizer: str = "adamw"      # adamw | sgd
    momentum: float = 0.9         # sgd
    nesterov: bool = False        # sgd
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0     # L2 (decoupled for AdamW)
    l1: float = 0.0               # L1 penalty on weight matrices
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1     # cosine decays to lr * min_lr_ratio at max_steps
    grad_clip: float = 1.0        # 0 disables clipping
    early_stopping: int = 0       # patience in validations; 0 disables
    stateful: bool = False        # frames: each batch lane plays songs window after window, the state carried (truncated BPTT)
    val_every: int = 200
    val_batches: int = 20
    seed: int = 1337
    precision: str = "32-true"    # 32-true | bf16-mixed | 16-mixed
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    compile: bool = False
    wandb: bool = False
    wandb_project: str = "seqkit"
    progress: bool = True
    out: str = ""                 # run directory; default checkpoints/<run-name>


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        cfg = cls()
        apply_dict(cfg, d)
        return cfg


def _coerce(value, typ, key: str):
    """Turn a YAML or command-line value into the field's declared type."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_coerce(v, a, key) for v, a in zip(items, typing.get_args(typ)))
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected true/false, got {value!r}")
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected {typ.__name__}, got {value!r}") from None


def set_value(cfg: RunConfig, key: str, value) -> None:
    """Set `section.field` (e.g. `model.d_hidden`) from a string or YAML value; unknown keys are errors."""
    section_name, _, name = key.partition(".")
    section = getattr(cfg, section_name, None) if section_name in ("model", "data", "train") else None
    if section is None or not name:
        raise ValueError(f"unknown config key {key!r}: use model.*, data.* or train.*")
    types = typing.get_type_hints(type(section))
    if name not in types:
        valid = ", ".join(f.name for f in dataclasses.fields(section))
        raise ValueError(f"unknown config key {key!r}; {section_name} has: {valid}")
    setattr(section, name, _coerce(value, types[name], key))


def set_field(cfg: RunConfig, key: str, value) -> None:
    """`set_value` that also takes a bare field name (`d_hidden`) and finds its section."""
    if "." not in key:
        sections = [s for s in ("data", "model", "train") if key in {f.name for f in dataclasses.fields(getattr(cfg, s))}]
        if not sections:
            raise ValueError(f"unknown option {key!r}: not a model, data or train setting")
        key = f"{sections[0]}.{key}"
    set_value(cfg, key, value)


def at_least(low):
    return lambda v: v >= low, f"at least {low}"


def between(low, high):
    return lambda v: low <= v <= high, f"from {low} to {high}"


# Each numeric or choice field with what it must be; `check` names the first one that is not.
REQUIREMENTS = {
    "train.max_steps": at_least(1), "train.batch_size": at_least(1), "train.val_every": at_least(1),
    "train.val_batches": at_least(1), "train.warmup_steps": at_least(0), "train.early_stopping": at_least(0),
    "train.num_nodes": at_least(1), "train.weight_decay": at_least(0.0), "train.l1": at_least(0.0),
    "train.grad_clip": at_least(0.0), "train.momentum": between(0.0, 1.0), "train.min_lr_ratio": between(0.0, 1.0),
    "train.lr": (lambda v: v > 0, "greater than 0"),
    "train.optimizer": (lambda v: v in ("adamw", "sgd"), "adamw or sgd"),
    "train.precision": (lambda v: v in ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true"),
                        "32-true, bf16-mixed or 16-mixed"),
    "data.vocab_size": at_least(1), "data.workers": at_least(0), "data.val_fraction": (lambda v: 0 < v < 0.5, "between 0 and 0.5"),
    "data.frames_per_quarter": between(1, 96), "data.frame_sampling": (lambda v: v in SAMPLINGS, " or ".join(SAMPLINGS)),
    "data.grid": between(1, 96), "data.velocity_bins": between(0, 127),
    "data.max_duration_quarters": at_least(1), "data.pitch_low": between(0, 127), "data.pitch_high": between(0, 127),
    "data.key_estimate": (lambda v: v in KEY_ESTIMATES, " or ".join(KEY_ESTIMATES)),
}


def check(cfg: RunConfig) -> None:
    """Raise a one-line ValueError naming the first setting out of its range."""
    for key, (ok, requirement) in REQUIREMENTS.items():
        section, _, name = key.partition(".")
        value = getattr(getattr(cfg, section), name)
        if not ok(value):
            raise ValueError(f"{key} must be {requirement}, got {value!r}")
    betas = cfg.train.betas
    if not all(0 <= b < 1 for b in betas):
        raise ValueError(f"train.betas must each be in [0, 1), got {betas}")
    if cfg.data.augment and cfg.data.normalize_key:
        raise ValueError("data.augment would move the pieces data.normalize_key puts into C major / A minor back "
                         "into other keys: set one of them")


def flatten(d: dict) -> dict:
    """YAML sections as keys: {"model": {"family": "lstm"}} → {"model.family": "lstm"}."""
    for section_name, values in d.items():
        if not isinstance(values, dict):
            raise ValueError(f"config section {section_name!r} must be a mapping of keys to values")
    return {f"{section_name}.{name}": value for section_name, values in d.items() for name, value in values.items()}


def apply_dict(cfg: RunConfig, d: dict) -> None:
    for key, value in flatten(d).items():
        set_value(cfg, key, value)


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict) -> None:
    """`key=value` strings (as --set gives them), or a {key: value} mapping."""
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            set_value(cfg, key, value)
        return
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        set_value(cfg, key.strip(), value.strip())


def changes(before: RunConfig, after: RunConfig) -> list[tuple[str, object, object]]:
    """(key, value before, value after) of every field that differs, in section order."""
    found = []
    for section in ("model", "data", "train"):
        old, new = getattr(before, section), getattr(after, section)
        for f in dataclasses.fields(old):
            if getattr(old, f.name) != getattr(new, f.name):
                found.append((f"{section}.{f.name}", getattr(old, f.name), getattr(new, f.name)))
    return found


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected sections model/data/train at the top level")
    return d
