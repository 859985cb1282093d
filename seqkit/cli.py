"""The `seqkit` command line: thin wrappers over the Python API."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train next-token models on text or music and sample from them.")
demo_app = typer.Typer(no_args_is_help=True, help="Ready-made demos on built-in data.")
app.add_typer(demo_app, name="demo")


def user_errors(fn):
    """Bad input becomes one line on stderr and exit code 1 (SEQKIT_DEBUG=1 shows the traceback)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
            if os.environ.get("SEQKIT_DEBUG"):
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
    return wrapper


@app.command()
@user_errors
def train(
    data: Optional[str] = typer.Argument(None, help="A text/MIDI file, a folder, or a built-in data set (pydoc, "
                                         "bach); default pydoc."),
    model: Optional[str] = typer.Option(None, help="ar | ffwd | jordan | elman | lstm | transformer"),
    tokenizer: Optional[str] = typer.Option(None, help="char | byte | bpe | unigram | midi | pianoroll (default: char for text, midi for music)"),
    vocab_size: Optional[int] = typer.Option(None, help="Vocabulary size for bpe / unigram."),
    context: Optional[int] = typer.Option(None, help="Training sequence length (transformer: attention window)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps."),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate."),
    seed: Optional[int] = typer.Option(None),
    precision: Optional[str] = typer.Option(None, help="32-true | bf16-mixed | 16-mixed"),
    accelerator: Optional[str] = typer.Option(None, help="auto | cpu | gpu"),
    devices: Optional[str] = typer.Option(None, help="Number of devices, or a list like 0,1."),
    strategy: Optional[str] = typer.Option(None, help="auto | ddp | fsdp ... (Lightning's)"),
    num_nodes: Optional[int] = typer.Option(None),
    out: Optional[str] = typer.Option(None, help="Run directory (default checkpoints/<run-name>)."),
    config: Optional[Path] = typer.Option(None, help="YAML file with model/data/train sections."),
    set_: list[str] = typer.Option([], "--set", help="Override any config field: --set model.d_hidden=512"),
    wandb: Optional[bool] = typer.Option(None, "--wandb/--no-wandb", help="Log to Weights & Biases (offline unless configured)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint (the first "
                                "command with --resume added does it)."),
):
    """Train a model; prints the run directory at the end."""
    from seqkit.config import RunConfig, apply_dict, apply_overrides, flatten, load_yaml, set_value
    from seqkit.kinds import default_kind, kind_class
    from seqkit.training import resume as resume_training, train as run_training

    flags = {"model.family": model, "data.tokenizer": tokenizer, "data.vocab_size": vocab_size,
             "model.context": context, "train.max_steps": max_steps, "train.batch_size": batch_size, "train.lr": lr,
             "train.seed": seed, "train.precision": precision, "train.accelerator": accelerator,
             "train.devices": devices, "train.strategy": strategy, "train.num_nodes": num_nodes, "train.wandb": wandb}
    given = {key: value for key, value in flags.items() if value is not None}
    yaml_config = load_yaml(config) if config else {}
    if resume:
        if not out:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        # What this command says, in the order a new run applies it; the saved run refuses any real change.
        stated = {**flatten(yaml_config), **({"data.source": data} if data else {}), **given, **_settings(set_)}
        typer.echo(f"run directory: {resume_training(out, stated)}")
        return

    def configured(defaults: dict) -> RunConfig:
        cfg = RunConfig()
        for key, value in defaults.items():
            set_value(cfg, key, value)
        apply_dict(cfg, yaml_config)
        for key, value in {"data.source": data, "train.out": out, **given}.items():
            if value is not None:
                set_value(cfg, key, value)
        apply_overrides(cfg, set_)
        return cfg

    cfg = configured({})
    if tokenizer is None and "tokenizer" not in yaml_config.get("data", {}) \
            and not any(item.startswith("data.tokenizer=") for item in set_):
        cfg.data.tokenizer = default_kind(cfg.data.source)
    # What the data kind trains well with (piano-roll frames: the "frames" preset), under the user's settings.
    defaults = kind_class(cfg.data.tokenizer).default_settings(cfg)
    if defaults:
        cfg = configured({**defaults, "data.tokenizer": cfg.data.tokenizer})
    run_dir = run_training(cfg)
    typer.echo(f"run directory: {run_dir}")


@app.command()
@user_errors
def generate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `seqkit train`."),
    prompt: str = typer.Option("", help="Text to continue (default: start of a line)."),
    prompt_file: Optional[Path] = typer.Option(None, help="A text file to continue, or for music a MIDI/score file "
                                               "whose opening primes the model."),
    bars: int = typer.Option(4, help="Music: bars of --prompt-file to prime with."),
    max_new_tokens: int = typer.Option(500),
    min_new_tokens: int = typer.Option(0, help="Music: no end of the piece before this many new tokens."),
    temperature: float = typer.Option(1.0, help="0 is greedy."),
    top_k: Optional[int] = typer.Option(None),
    top_p: Optional[float] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    num_samples: int = typer.Option(1),
    out: Optional[Path] = typer.Option(None, help="Output file: text (instead of stdout), or music's MIDI file; "
                                       "several samples get _1, _2 ..."),
    audio: bool = typer.Option(False, "--audio/--no-audio", help="Music: also write x.wav beside each x.mid."),
    soundfont: Optional[Path] = typer.Option(None, help="Music: a General MIDI .sf2/.sf3 for --audio (default: "
                                             "$SEQKIT_SOUNDFONT or an installed one, else the built-in synthesizer)."),
):
    """Sample from a trained model: text to stdout (streamed) or to --out files; music as MIDI files with
    piano rolls (and WAVs)."""
    import seqkit
    from seqkit.generate import check_min_new_tokens

    trained = seqkit.load(run_dir)
    sampling = dict(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, temperature=temperature,
                    top_k=top_k, top_p=top_p, seed=seed, num_samples=num_samples)
    trained.tokenizer.check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples)
    check_min_new_tokens(min_new_tokens, max_new_tokens)
    if soundfont is not None:
        from seqkit.music.audio import check_soundfont
        check_soundfont(soundfont)
    trained.tokenizer.write_samples(trained, prompt, sampling, typer.echo, prompt_file=prompt_file, bars=bars,
                                    out=out, audio=audio, soundfont=soundfont)


@app.command(name="eval")
@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    data: str = typer.Argument(..., help="Text/MIDI file, folder, built-in name, or a .mat/.npz frame set."),
    split: Optional[str] = typer.Option(None, help="train | val | test (default: all of a user's data, test of a built-in)."),
):
    """Loss, perplexity and bits per token (per char for text) of a trained model on some data."""
    import seqkit

    metrics = seqkit.load(run_dir).evaluate(data, split=split)
    for name, value in metrics.items():
        typer.echo(f"{name:>16}  {value:.4f}" if isinstance(value, float) else f"{name:>16}  {value}")


@app.command()
@user_errors
def info(run_dir: Path = typer.Argument(..., help="A run directory.")):
    """Family, parameters, tokenizer and training summary of a run."""
    import seqkit

    trained = seqkit.load(run_dir)
    cfg = trained.config
    typer.echo(f"run        {trained.run_dir}")
    typer.echo(f"family     {cfg.model.family}  ({trained.num_parameters:,} parameters)")
    typer.echo(f"model      {cfg.model}")
    typer.echo(f"tokenizer  {trained.tokenizer.name}, vocabulary {trained.tokenizer.vocab_size}")
    typer.echo(f"data       {cfg.data.source}")
    typer.echo(f"seqkit     {trained.info.get('seqkit_version')}")
    for key, value in (trained.info.get("summary") or {}).items():
        typer.echo(f"{key:<10} {value}")


@app.command()
@user_errors
def tokenize(
    path: Path = typer.Argument(..., help="A text or music file, or a folder of them."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer kind (default: char for text, midi for music)."),
    vocab_size: int = typer.Option(1000, help="bpe / unigram vocabulary size (trained on the data)."),
    show: int = typer.Option(20, help="How many tokens of a file to print."),
    roundtrip: Optional[Path] = typer.Option(None, help="Write decode(encode(FILE)) here, and say what changed."),
    workers: int = typer.Option(0, help="A folder: processes that tokenise it (0: every core)."),
    cache_dir: str = typer.Option("data/cache", help="A folder: the cache `seqkit train` reads."),
    set_: list[str] = typer.Option([], "--set", help="Tokenizer settings: --set data.grid=24 --set data.programs=true"),
):
    """Show how a tokenizer sees a file (--roundtrip writes it back to check what is kept), or tokenise
    every file of a folder into the cache training reads."""
    import time

    from seqkit.config import DataConfig, RunConfig, apply_overrides, check
    from seqkit.kinds import default_kind, kind_class

    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    cfg = RunConfig(data=DataConfig(source=str(path), vocab_size=vocab_size, workers=workers, cache_dir=cache_dir))
    apply_overrides(cfg, set_)
    check(cfg)
    kind = kind_class(tokenizer or default_kind(str(path)))
    if path.is_dir():
        start = time.perf_counter()
        files, tokens, skipped = kind.tokenize_folder(cfg.data)
        seconds = time.perf_counter() - start
        typer.echo(f"{files} files, {tokens:,} tokens in {seconds:.2f} s ({files / seconds:,.1f} files/s)"
                   + (f"; skipped {skipped} that could not be read" if skipped else ""))
        return
    tok, ids, write_back = kind.tokenize_file(path, cfg.data)
    typer.echo(f"{path}: {len(ids)} tokens ({tok.name}, vocabulary {tok.vocab_size})")
    typer.echo(" ".join(tok.describe(ids[:show])))
    if roundtrip:
        typer.echo(write_back(ids, roundtrip))


def _settings(items: list[str]) -> dict:
    pairs = [item.partition("=") for item in items]
    bad = [item for item, (_, sep, _) in zip(items, pairs) if not sep]
    if bad:
        raise ValueError(f"--set expects key=value, got {bad[0]!r}")
    return {key.strip(): value.strip() for key, _, value in pairs}


@app.command()
@user_errors
def compare(
    data: str = typer.Argument("pydoc", help="A text/MIDI file, a folder or a built-in data set."),
    models: str = typer.Option("ar,ffwd,jordan,elman,lstm,transformer", help="Comma-separated families."),
    max_steps: int = typer.Option(300, help="Steps per family."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds of training per family (instead of steps)."),
    tokenizer: Optional[str] = typer.Option(None),
    seed: int = typer.Option(1337),
    params: Optional[int] = typer.Option(None, help="Size every family to about this many parameters."),
    out: Path = typer.Option(Path("checkpoints/compare"), help="Runs, compare.csv/.md and compare.png go here."),
    wandb: bool = typer.Option(False, "--wandb/--no-wandb", help="Each family a W&B run, in one group."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: --set context=128"),
):
    """Train every family on the same data and budget; print a leaderboard and plot the curves."""
    from seqkit.compare import compare as run_compare

    run_compare(data, models, max_steps, time_budget, tokenizer, seed, params, out, wandb, echo=typer.echo,
                **_settings(set_))


@app.command()
@user_errors
def doctor(
    data: str = typer.Argument("pydoc", help="A text/MIDI file, a folder or a built-in data set."),
    model: str = typer.Option("lstm", help="Model family."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default 3e-3)."),
    steps: int = typer.Option(200, help="Steps of the one-batch overfit and of the short run."),
    tokenizer: Optional[str] = typer.Option(None),
    out: Optional[Path] = typer.Option(None, help="Where doctor.md and doctor.png go (default checkpoints/doctor)."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: --set n_layers=6 --set activation=sigmoid"),
):
    """Check a set-up before a long run: init loss, overfitting a batch, gradient flow, data, a short run."""
    from seqkit.doctor import doctor as run_doctor

    checks = run_doctor(data, model, lr, steps, tokenizer, out, echo=typer.echo, **_settings(set_))
    if any(check.status == "FAIL" for check in checks):
        raise typer.Exit(2)


@demo_app.command("text")
@user_errors
def demo_text(
    model: str = typer.Option("lstm", help="Model family."),
    steps: int = typer.Option(300, help="Training steps."),
    out: Path = typer.Option(Path("checkpoints/demo-text"), help="Run directory."),
):
    """Train a small model on the built-in `pydoc` text and sample from it."""
    import seqkit
    from seqkit.presets import preset

    cfg = preset("demo-text", model, max_steps=steps, val_every=max(steps // 3, 1), out=str(out))
    run_dir = seqkit.train(cfg)
    trained = seqkit.load(run_dir)
    typer.echo(f"\nbest validation loss {trained.info['summary']['best_val_loss']:.3f} nats/token, "
               f"{trained.info['summary']['best_val_bits_per_char']:.3f} bits/char")
    for text in trained.generate("The ", max_new_tokens=300, temperature=0.8, seed=0):
        typer.echo(f"--- sample ---\n{text}")
    typer.echo(f"run directory: {run_dir}")


@demo_app.command("predict-song")
@user_errors
def demo_predict_song(
    model: str = typer.Option("transformer", help="Model family."),
    steps: Optional[int] = typer.Option(None, help="Training steps; default: the demo preset's. A trained model in --out is reused."),
    bars: int = typer.Option(4, help="Opening bars each held-out chorale is primed with."),
    pieces: str = typer.Option("all", help="Held-out chorales to continue for the music statistics: a number or 'all'."),
    examples: str = typer.Option("3", help="Of those, how many to write as MIDI + piano roll: a number or 'all'."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature; default: the demo's measured choice."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus sampling; default: the demo's measured choice."),
    out: Path = typer.Option(Path("checkpoints/demo-predict-song"), help="Where the model and files go."),
    seed: int = typer.Option(0),
    wandb: bool = typer.Option(False, "--wandb/--no-wandb", help="Log piano rolls, audio and metrics to W&B."),
    audio: bool = typer.Option(False, "--audio/--no-audio", help="Also write a WAV beside each MIDI file."),
    soundfont: Optional[Path] = typer.Option(None, help="A General MIDI .sf2/.sf3 for --audio."),
    set_: list[str] = typer.Option([], "--set", help="Config of a new run: --set data.grid=24 --set model.context=256"),
):
    """Train on the Bach chorales, continue held-out ones from their opening bars, and compare with Bach."""
    from seqkit.generate import check_sampling
    from seqkit.music.demo import predict_song

    if soundfont is not None:
        from seqkit.music.audio import check_soundfont
        check_soundfont(soundfont)
    check_sampling(1, 1.0 if temperature is None else temperature, None, top_p, 1)
    predict_song(model, steps, bars, examples, out, seed, wandb, echo=typer.echo, audio=audio or wandb,
                 soundfont=soundfont, pieces=pieces, temperature=temperature, top_p=top_p, **_settings(set_))


@app.command(name="export-frames")
@user_errors
def export_frames(
    source: str = typer.Argument(..., help="bach, a folder of MIDI/score files, or one file."),
    out: Path = typer.Argument(..., help="The benchmark file to write: .npz, .mat or .pickle."),
    frames_per_quarter: int = typer.Option(2, help="Time resolution: frames per quarter note."),
    low: int = typer.Option(21, help="Lowest key (MIDI number; 21 = A0)."),
    high: int = typer.Option(108, help="Highest key (108 = C8)."),
    val_fraction: float = typer.Option(0.1, help="Of the pieces, for validation and for test each."),
    sampling: str = typer.Option("snap", help="snap: every note, snapped to the nearest frames; start: the notes "
                                 "sounding at each frame's start, as the published JSB Chorales set."),
    cache_dir: str = typer.Option("data/cache"),
):
    """Write music as polyphonic frames in the benchmark layout (traindata/validdata/testdata)."""
    from seqkit.music.frame_data import export_frames as run_export

    counts = run_export(source, out, frames_per_quarter, low, high, cache_dir, val_fraction, sampling)
    typer.echo(f"wrote {out}: " + ", ".join(f"{n} {split} songs" for split, n in counts.items()))


def main():
    app()


if __name__ == "__main__":
    main()
