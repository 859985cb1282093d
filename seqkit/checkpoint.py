"""The run directory: everything needed to use a model later, loaded without unpickling anything.

    run.json        format version, seqkit version, the resolved config, training summary
    tokenizer.json  the tokenizer as plain data
    model.pt        the best weights, a plain state dict read with torch.load(weights_only=True)
    ckpt/           Lightning's last.ckpt / best.ckpt, for resuming
    metrics.csv     every logged metric (CSVLogger)
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from seqkit import __version__
from seqkit.config import RunConfig
from seqkit.io import atomic_path, write_json
from seqkit.kinds import kind_from_dict
from seqkit.models import build_model

FORMAT = "seqkit-run"
FORMAT_VERSION = 1


def save_run_info(run_dir: Path, cfg: RunConfig, tokenizer, **extra) -> None:
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "seqkit_version": __version__,
            "config": cfg.to_dict(), **extra}
    write_json(run_dir / "run.json", info)
    write_json(run_dir / "tokenizer.json", tokenizer.to_dict())


def update_run_info(run_dir: Path, **extra) -> None:
    info = json.loads((run_dir / "run.json").read_text())
    write_json(run_dir / "run.json", {**info, **extra})


def safe_load(path: Path) -> dict:
    """torch.load that never executes code: anything but tensors and plain containers is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ValueError(f"{path}: refused to load: not a plain weights file ({first[:160]})") from None


def export_weights(run_dir: Path, lightning_ckpt: Path) -> None:
    """Copy the model's weights out of a Lightning checkpoint into model.pt (no optimizer, no pickle)."""
    state = safe_load(lightning_ckpt)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(weights, tmp)


def read_run_info(path: str | Path) -> tuple[Path, dict]:
    """Find the run directory for `path` (the directory or a file in it) and read run.json, checking its format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such run directory: {path}")
    run_dir = path if path.is_dir() else path.parent
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise ValueError(f"{run_dir} is not a seqkit run (no run.json): pass the folder `seqkit train` printed")
    try:
        info = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{info_path}: damaged (not JSON)") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{info_path}: not a seqkit run file")
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{run_dir}: run format version {info.get('format_version')}, but seqkit "
                         f"{__version__} reads version {FORMAT_VERSION}; use a matching seqkit")
    return run_dir, info


def read_tokenizer(run_dir: Path):
    """The run's data kind, from tokenizer.json: the truth for a trained run, whatever the config says."""
    path = run_dir / "tokenizer.json"
    try:
        return kind_from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ValueError(f"{run_dir}: no tokenizer.json; not a complete seqkit run") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}: damaged (not JSON)") from None


def load_run(path: str | Path):
    """→ (run_dir, RunConfig, tokenizer, model in eval mode, run info)."""
    run_dir, info = read_run_info(path)
    cfg = RunConfig.from_dict(info["config"])
    tokenizer = read_tokenizer(run_dir)
    weights_path = run_dir / "model.pt"
    if not weights_path.is_file():
        raise ValueError(f"{run_dir}: no model.pt yet (training has not finished); "
                         "finish it with `seqkit train ... --resume`")
    model = build_model(cfg.model)
    try:
        model.load_state_dict(safe_load(weights_path))
    except RuntimeError:
        raise ValueError(f"{weights_path}: weights do not match the model in run.json") from None
    return run_dir, cfg, tokenizer, model.eval(), info
