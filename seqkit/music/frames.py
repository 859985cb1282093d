"""Polyphonic piano-roll frames, as in Boulanger-Lewandowski et al. (2012) and Bai, Kolter & Koltun (2018).

A song is a (T, K) binary array: frame t holds the keys sounding at step t (K = 88 piano keys, A0..C8, by
default). A model reads frames up to t and predicts frame t+1 as K independent Bernoulli variables; the
metric is the NLL per frame (Bernoulli NLL summed over the keys, averaged over every predicted frame of
every held-out song), beside frame-level accuracy and F1 of the thresholded predictions.

Sources: a benchmark file (.mat, .npz or a pickle holding traindata/validdata/testdata, as the published
JSB Chorales, Piano-midi.de, Nottingham and MuseData sets are), or MIDI/score files, a folder of them, or
the built-in `bach`, quantised to `frames_per_quarter` frames per quarter note. Make a benchmark file from
any of the latter with

    python -m seqkit.music.frames export bach chorales.npz [--frames-per-quarter 2]
"""
from __future__ import annotations

import argparse
import math
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, IterableDataset

from seqkit.config import DataConfig
from seqkit.data import Corpus, TokenData
from seqkit.io import atomic_path
from seqkit.music.notes import Note, NoteList, sort_notes

BENCHMARK_SUFFIXES = (".mat", ".npz", ".pickle", ".pkl")
SPLIT_KEYS = {"train": ("traindata", "train"), "val": ("validdata", "valid", "val"), "test": ("testdata", "test")}
FRAME_CACHE_FORMAT = 1  # bump when the same file and settings would give a different roll
TICKS_PER_QUARTER = 480


class PianoRoll:
    """The "tokenizer" of frame models: keys low..high (MIDI numbers), `frames_per_quarter` frames per
    quarter note. `vocab_size` is the number of keys, K."""

    kind = "pianoroll"

    def __init__(self, low: int = 21, high: int = 108, frames_per_quarter: int = 2):
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 127):
            raise ValueError(f"piano-roll keys need integers 0 <= low <= high <= 127; got low={low}, high={high}")
        if not (isinstance(frames_per_quarter, int) and 1 <= frames_per_quarter <= 96):
            raise ValueError(f"frames_per_quarter must be an integer from 1 to 96, got {frames_per_quarter}")
        self.low, self.high, self.frames_per_quarter = low, high, frames_per_quarter
        self.vocab_size = high - low + 1

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": self.low, "high": self.high, "frames_per_quarter": self.frames_per_quarter}

    @classmethod
    def from_dict(cls, d: dict) -> PianoRoll:
        settings = dict(d)
        kind = settings.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"expected a {cls.kind!r} tokenizer, got kind {kind!r}")
        return cls(**settings)

    def __eq__(self, other) -> bool:
        return isinstance(other, PianoRoll) and self.to_dict() == other.to_dict()

    def notes_to_roll(self, notes) -> np.ndarray:
        """(T, K) bool: a key is on in every frame its note sounds in. Onsets and ends snap to the nearest
        frame (a note lasts at least one); notes outside low..high are left out. T covers every note."""
        step = lambda quarters: math.floor(quarters * self.frames_per_quarter + 0.5)  # noqa: E731
        spans = []
        for note in notes:
            onset = max(0, step(note.start))
            spans.append((note.pitch, onset, max(onset + 1, step(note.start + note.duration))))
        roll = np.zeros((max((end for _, _, end in spans), default=0), self.vocab_size), dtype=bool)
        for pitch, onset, end in spans:
            if self.low <= pitch <= self.high:
                roll[onset:end, pitch - self.low] = True
        return roll

    def roll_to_notes(self, roll) -> NoteList:
        """Notes of a roll: each run of consecutive on-frames of a key is one sustained note."""
        roll = np.asarray(roll) != 0
        changes = np.diff(np.pad(roll, ((1, 1), (0, 0))).astype(np.int8), axis=0).T  # (K, T+1)
        keys, onsets = np.nonzero(changes == 1)  # key-major, so onsets and ends pair up in order
        _, ends = np.nonzero(changes == -1)
        fpq = self.frames_per_quarter
        return NoteList(sort_notes(Note(self.low + int(k), int(a) / fpq, int(b - a) / fpq)
                                   for k, a, b in zip(keys, onsets, ends)))

    def read_roll(self, path) -> np.ndarray:
        """(T, K) bool roll of a MIDI file or a score music21 reads."""
        from seqkit.music.tokenizer import MidiTokenizer
        return self.notes_to_roll(MidiTokenizer().read_notes(path))

    def write_midi(self, roll, path) -> None:
        """Write a roll as a one-track MIDI file (written atomically)."""
        from seqkit.music.midi_file import midi_bytes
        data = midi_bytes(self.roll_to_notes(roll), TICKS_PER_QUARTER)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)


# --- corpora -------------------------------------------------------------------------------------

def load_frame_corpus(cfg: DataConfig, tokenizer: PianoRoll | None = None) -> Corpus:
    """Songs of `cfg.source` as lists of (T, K) uint8 rolls per split. A benchmark file keeps its own
    split (and its own frame rate: set `frames_per_quarter` to it, 1 for the quarter-note JSB set, so
    written MIDI keeps time); music files are split by piece, seed 0, as `seqkit.music.data` does."""
    tokenizer = tokenizer or PianoRoll(frames_per_quarter=cfg.frames_per_quarter)
    if Path(cfg.source).suffix.lower() in BENCHMARK_SUFFIXES:
        splits = read_benchmark_file(cfg.source, tokenizer)
    else:
        splits = _parsed_splits(cfg, tokenizer)
    if not splits["train"]:
        raise ValueError(f"{cfg.source}: no training songs")
    if cfg.augment:
        splits["train"] = splits["train"] + transpositions(splits["train"])
    return Corpus(tokenizer, splits["train"], splits["val"], splits["test"] or None)


class _AllKeys:
    """What `tokenize_pieces` needs to parse and cache pieces as rolls of all 128 MIDI keys: one cache
    serves every key range, and the notes a range leaves out can be counted when it is cut."""

    vocab_size = 128

    def __init__(self, frames_per_quarter: int):
        self.roll = PianoRoll(0, 127, frames_per_quarter)

    def to_dict(self) -> dict:
        return {**self.roll.to_dict(), "cache_format": FRAME_CACHE_FORMAT}

    def encode_file(self, path) -> np.ndarray:
        roll = self.roll.read_roll(path)
        if not roll.any():
            raise ValueError(f"{path}: no notes found")
        return roll


def _parsed_splits(cfg: DataConfig, tokenizer: PianoRoll) -> dict[str, list[np.ndarray]]:
    from seqkit.music.data import split_sequences  # parallel, cached on disk, split by piece

    splits = {name: list(pieces.values()) for name, pieces in
              split_sequences(cfg, _AllKeys(tokenizer.frames_per_quarter)).items()}
    dropped = sum(int(roll.sum()) - int(roll[:, tokenizer.low:tokenizer.high + 1].sum())
                  for rolls in splits.values() for roll in rolls)
    _warn_dropped(cfg.source, dropped, tokenizer)
    return {name: [roll[:, tokenizer.low:tokenizer.high + 1].astype(np.uint8) for roll in rolls]
            for name, rolls in splits.items()}


def _warn_dropped(source, dropped: int, tokenizer: PianoRoll) -> None:
    if dropped:
        print(f"warning: {source}: dropped {dropped} sounding key-frames outside keys "
              f"{tokenizer.low}..{tokenizer.high}", file=sys.stderr)


def transpositions(rolls: list[np.ndarray], low: int = -5, high: int = 6) -> list[np.ndarray]:
    """Extra training songs: each shifted by every number of keys in low..high except 0 that keeps it
    inside the roll. Only for training data."""
    extra = []
    for roll in rolls:
        on = np.nonzero(roll.any(0))[0]
        if not len(on):
            continue
        for shift in range(low, high + 1):
            if shift and on[0] + shift >= 0 and on[-1] + shift < roll.shape[1]:
                extra.append(np.roll(roll, shift, axis=1))
    return extra


# --- benchmark files -----------------------------------------------------------------------------

def read_benchmark_file(path, tokenizer: PianoRoll | None = None) -> dict[str, list[np.ndarray]]:
    """{"train", "val", "test"} → lists of (T, K) uint8 rolls from a .mat, .npz or pickle file holding
    traindata/validdata/testdata (or train/valid/test): lists of songs, each a (T, K or 128) binary array
    or, as in the original JSB pickle, a list of frames of active MIDI pitch numbers. Pickles (and object
    arrays in .npz) are read without running code: anything but plain data and numpy arrays is refused."""
    path = Path(path)
    tokenizer = tokenizer or PianoRoll()
    suffix = path.suffix.lower()
    if suffix == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError:
            raise ValueError(f"{path}: reading .mat files needs scipy (pip install scipy)") from None
        data = {k: np.asarray(v).ravel() for k, v in loadmat(path).items() if not k.startswith("__")}
    elif suffix == ".npz":
        data = _read_npz(path)
    elif suffix in (".pickle", ".pkl"):
        with open(path, "rb") as f:
            data = _safe_unpickle(f, path)
    else:
        raise ValueError(f"{path}: not a benchmark file; use one of {', '.join(BENCHMARK_SUFFIXES)}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of traindata/validdata/testdata, got {type(data).__name__}")
    data = {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}
    splits, dropped = {}, 0
    for split, names in SPLIT_KEYS.items():
        found = next((data[name] for name in names if name in data), None)
        if found is None:
            has = ", ".join(map(str, data)) or "nothing"
            raise ValueError(f"{path}: no {' or '.join(names)} in it (it has: {has})")
        splits[split] = []
        for i, song in enumerate(found):
            roll, n = _song_roll(song, tokenizer, f"{path}: {names[0]}[{i}]")
            splits[split].append(roll)
            dropped += n
    _warn_dropped(path, dropped, tokenizer)
    return splits


def _song_roll(song, tokenizer: PianoRoll, where: str) -> tuple[np.ndarray, int]:
    """One song (binary frames, or frames of pitch numbers) → (T, K) uint8 roll, key-frames dropped."""
    K, low = tokenizer.vocab_size, tokenizer.low
    try:
        frames = np.asarray(song)
    except ValueError:  # ragged: frames of pitch numbers
        frames = None
    if frames is not None and frames.dtype != object and frames.ndim == 2 and frames.shape[1] in (K, 128) \
            and (frames.size == 0 or frames.max() <= 1):
        roll = frames != 0
        if frames.shape[1] == K:
            return roll.astype(np.uint8), 0
        kept = roll[:, low:tokenizer.high + 1]
        return kept.astype(np.uint8), int(roll.sum() - kept.sum())
    try:
        pitches = [[int(p) for p in np.ravel(frame)] for frame in song]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a song must be a (T, {K}) binary array or a list of frames of MIDI "
                         "pitch numbers") from None
    roll, dropped = np.zeros((len(pitches), K), dtype=np.uint8), 0
    for t, frame in enumerate(pitches):
        for p in frame:
            if low <= p <= tokenizer.high:
                roll[t, p - low] = 1
            else:
                dropped += 1
    return roll, dropped


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and numpy arrays; any other class or function is
    refused, so a file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _safe_unpickle(f, path):
    try:
        return _PlainUnpickler(f, encoding="latin1").load()  # latin1: Python 2 pickles of numpy arrays
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise ValueError(f"{path}: refused to load: not plain song data ({reason})") from None


def _read_npz(path: Path) -> dict:
    """The arrays of an .npz; object arrays are unpickled with _PlainUnpickler instead of np.load's pickle."""
    data = {}
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not an .npz file") from None
    with archive:
        for name in archive.namelist():
            with archive.open(name) as f:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                if dtype.hasobject:
                    array = _safe_unpickle(f, path)
                else:
                    array = np.frombuffer(f.read(), dtype=dtype).reshape(shape, order="F" if fortran else "C")
            data[name.removesuffix(".npy")] = array
    return data


def write_benchmark_file(path, songs_by_split: dict, low: int = 21) -> None:
    """Write {"train", "val", "test"} → lists of (T, K) binary rolls in the benchmark layout, atomically:
    .npz or .mat (traindata/validdata/testdata as object arrays / cell arrays of (T, K) uint8), or a
    JSB-style pickle (train/valid/test: lists of frames of active MIDI pitch numbers, key 0 = `low`)."""
    path = Path(path)
    names = {"train": "traindata", "val": "validdata", "test": "testdata"}
    suffix = path.suffix.lower()
    if suffix in (".npz", ".mat"):
        data = {}
        for split, name in names.items():
            songs = songs_by_split.get(split) or []
            data[name] = np.empty(len(songs), dtype=object)
            for i, song in enumerate(songs):
                data[name][i] = (np.asarray(song) != 0).astype(np.uint8)
    elif suffix in (".pickle", ".pkl"):
        data = {name.removesuffix("data"): [[[low + int(k) for k in np.nonzero(frame)[0]] for frame in song]
                                            for song in songs_by_split.get(split) or []]
                for split, name in names.items()}
    else:
        raise ValueError(f"{path}: write a benchmark file as one of {', '.join(BENCHMARK_SUFFIXES)}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a path would get ".npz" appended to the temp name
        if suffix == ".npz":
            np.savez_compressed(f, **data)
        elif suffix == ".mat":
            from scipy.io import savemat
            savemat(f, data)
        else:
            pickle.dump(data, f, protocol=4)


def export_frames(source: str, path, frames_per_quarter: int = 2, low: int = 21, high: int = 108,
                  cache_dir: str = "data/cache", val_fraction: float = 0.1) -> dict[str, int]:
    """Quantise a music source (`bach`, a folder, files) to frames, split it by piece (seed 0) and write it
    as a benchmark file. Returns the number of songs per split."""
    cfg = DataConfig(source=source, tokenizer="pianoroll", cache_dir=cache_dir, val_fraction=val_fraction,
                     frames_per_quarter=frames_per_quarter)
    corpus = load_frame_corpus(cfg, PianoRoll(low, high, frames_per_quarter))
    splits = {"train": corpus.train, "val": corpus.val, "test": corpus.test or []}
    write_benchmark_file(path, splits, low)
    return {name: len(songs) for name, songs in splits.items()}


# --- batches -------------------------------------------------------------------------------------

def _window(song: np.ndarray, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """song[start:start+length] as float frames, zero-padded to `length`, and the mask of real frames."""
    piece = song[start:start + length]
    rolls = np.zeros((length, song.shape[1]), dtype=np.float32)
    rolls[:len(piece)] = piece
    mask = np.arange(length) < len(piece)
    return torch.from_numpy(rolls), torch.from_numpy(mask)


class RandomSongWindows(IterableDataset):
    """Endless batches of random windows of context+1 frames, (rolls (B, T+1, K), mask (B, T+1)); every
    window start of every song equally likely; songs shorter than a window are padded and masked. Step
    n's global batch (all ranks) depends only on (seed, n), as in `seqkit.data.RandomWindows`."""

    def __init__(self, songs: list[np.ndarray], context: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.songs = [song for song in songs if len(song) >= 2]  # a shorter one has nothing to predict
        self.context, self.batch_size = context, batch_size
        self.seed, self.start_step, self.rank, self.world_size = seed, start_step, rank, world_size
        self.last_start = np.array([max(len(song) - context - 1, 0) for song in self.songs])
        self.weights = (self.last_start + 1) / (self.last_start + 1).sum()

    def __iter__(self):
        step = self.start_step
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        while True:
            rng = np.random.default_rng((self.seed, step))
            n = self.batch_size * self.world_size
            picks = rng.choice(len(self.songs), n, p=self.weights)
            starts = (rng.random(n) * (self.last_start[picks] + 1)).astype(np.int64)
            windows = [_window(self.songs[i], s, self.context + 1) for i, s in zip(picks[mine], starts[mine])]
            yield torch.stack([w[0] for w in windows]), torch.stack([w[1] for w in windows])
            step += 1


class SongWindows(Dataset):
    """Whole songs cut into consecutive windows of context+1 frames, each sharing its last frame with the
    next, so every frame after a song's first is a target exactly once; the last window is padded."""

    def __init__(self, songs: list[np.ndarray], context: int, max_windows: int | None = None):
        self.windows = [(i, start) for i, song in enumerate(songs) for start in range(0, len(song) - 1, context)]
        if max_windows is not None and len(self.windows) > max_windows:
            keep = np.linspace(0, len(self.windows) - 1, max_windows).astype(int)
            self.windows = [self.windows[i] for i in keep]
        self.songs, self.context = songs, context

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, i):
        song, start = self.windows[i]
        return _window(self.songs[song], start, self.context + 1)


class FrameData(TokenData):
    """TokenData over songs of frames: padded, masked windows."""

    train_windows, val_windows = RandomSongWindows, SongWindows

    @staticmethod
    def check(corpus: Corpus, context: int) -> None:
        for songs, what in ((corpus.train, "train"), (corpus.val, "validation")):
            if not any(len(song) >= 2 for song in songs or []):
                raise ValueError(f"the {what} split has no song of 2 or more frames: nothing to predict")


# --- evaluation and generation -------------------------------------------------------------------

@torch.no_grad()
def evaluate_frames(model, songs: list[np.ndarray], context: int, batch_size: int = 32) -> dict:
    """NLL per frame (nats, summed over keys), frame-level accuracy TP/(TP+FP+FN) and F1 2TP/(2TP+FP+FN)
    of sigmoid > 0.5, over every frame but the first of each song. Each song is fed in `context`-sized
    chunks with the model's state carried, so the prediction of every frame sees the whole song before it."""
    songs = sorted((s for s in songs if len(s) >= 2), key=len, reverse=True)
    if not songs:
        raise ValueError("no song of 2 or more frames to evaluate")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll = tp = fp = fn = frames = 0.0
    try:
        for first in range(0, len(songs), batch_size):
            group = songs[first:first + batch_size]
            rolls, mask = (torch.stack(t).to(device) for t in zip(*(_window(s, 0, len(group[0])) for s in group)))
            state = None
            for start in range(0, rolls.size(1) - 1, context):
                logits, state = model(rolls[:, start:start + context], state)
                target = rolls[:, start + 1:start + context + 1]
                keep = mask[:, start + 1:start + context + 1, None].float()
                logits = logits.float()[:, :target.size(1)]
                nll += (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * keep).sum().item()
                predicted = (logits > 0).float() * keep
                tp += (predicted * target).sum().item()
                fp += (predicted * (1 - target)).sum().item()
                fn += ((1 - predicted) * target * keep).sum().item()
                frames += keep.sum().item()
    finally:
        model.train(was_training)
    return {"nll_per_frame": nll / frames, "accuracy": tp / max(tp + fp + fn, 1e-12),
            "f1": 2 * tp / max(2 * tp + fp + fn, 1e-12), "frames": int(frames)}


@torch.no_grad()
def generate_frames(model, prime: np.ndarray, n_frames: int, temperature: float = 1.0, seed: int | None = None,
                    num_samples: int = 1) -> list[np.ndarray]:
    """Continue `prime` (T0, K) by `n_frames` frames; returns num_samples (T0 + n_frames, K) uint8 rolls.
    Each key of each new frame is Bernoulli(sigmoid(logit / temperature)), temperature 0 thresholds at
    0.5. An empty prime starts from one silent frame. The prime is fed once; then each frame is one step."""
    from seqkit.generate import check_sampling

    check_sampling(n_frames, temperature, None, None, num_samples)
    K = model.cfg.vocab_size
    prime = np.asarray(prime, dtype=np.uint8).reshape(-1, K) if np.size(prime) else np.zeros((1, K), np.uint8)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    x = torch.as_tensor(prime, dtype=torch.float32, device=device).expand(num_samples, -1, -1)
    state, context = None, model.cfg.context
    for start in range(0, x.size(1), context):
        logits, state = model(x[:, start:start + context], state)
    new = []
    for i in range(n_frames):
        last = logits[:, -1].float()
        frame = (last > 0).float() if temperature == 0 else torch.bernoulli(torch.sigmoid(last / temperature),
                                                                             generator=generator)
        new.append(frame)
        if i + 1 < n_frames:
            logits, state = model(frame[:, None], state)
    continuation = torch.stack(new, 1).to(torch.uint8).cpu().numpy()
    return [np.concatenate([prime, sample]) for sample in continuation]


def generate_roll_music(trained, prompt_file: Path | None, bars: int, out: Path, max_new_tokens: int,
                        temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                        seed: int | None = None, num_samples: int = 1) -> list[Path]:
    """`seqkit generate` for a piano-roll model: prime with the first `bars` 4/4 bars of `prompt_file`
    (or one silent frame), sample `max_new_tokens` frames; write MIDI + PNG per sample."""
    from seqkit.music.pianoroll import PREDICTION, PROMPT, plot_pianoroll

    if top_k is not None or top_p is not None:
        raise ValueError("top-k and top-p do not apply to piano-roll models (each key is its own coin); "
                         "use --temperature")
    roll = trained.tokenizer
    prime = roll.read_roll(prompt_file)[:bars * 4 * roll.frames_per_quarter] if prompt_file else None
    if prime is not None and not len(prime):
        raise ValueError(f"{prompt_file}: no notes in its first {bars} bars")
    samples = generate_frames(trained.model, prime if prime is not None else np.zeros((0, roll.vocab_size)),
                              max_new_tokens, temperature, seed, num_samples)
    paths = [out] if len(samples) == 1 else [out.with_name(f"{out.stem}_{i + 1}{out.suffix}") for i in range(len(samples))]
    start = len(samples[0]) - max_new_tokens
    prompt_notes = roll.roll_to_notes(samples[0][:start])
    for sample, path in zip(samples, paths):
        roll.write_midi(sample, path)
        shift = start / roll.frames_per_quarter
        continuation = [n._replace(start=n.start + shift) for n in roll.roll_to_notes(sample[start:])]
        title = f"{path.name}: {bars} bars of {prompt_file.name} + continuation" if prompt_file else path.name
        plot_pianoroll(path.with_suffix(".png"), [("prompt", prompt_notes, PROMPT),
                                                  ("continuation", continuation, PREDICTION)], title=title)
    return paths


# --- command line --------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seqkit.music.frames", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="Write a music source as a benchmark file (.npz, .mat, .pickle).")
    export.add_argument("source", help="bach, a folder of MIDI/score files, or one file")
    export.add_argument("out", help="the file to write: .npz, .mat or .pickle")
    export.add_argument("--frames-per-quarter", type=int, default=2)
    export.add_argument("--low", type=int, default=21)
    export.add_argument("--high", type=int, default=108)
    export.add_argument("--val-fraction", type=float, default=0.1, help="of the pieces, for val and for test each")
    export.add_argument("--cache-dir", default="data/cache")
    args = parser.parse_args(argv)
    try:
        counts = export_frames(args.source, args.out, args.frames_per_quarter, args.low, args.high,
                               args.cache_dir, args.val_fraction)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"wrote {args.out}: " + ", ".join(f"{n} {split} songs" for split, n in counts.items()))


if __name__ == "__main__":
    main()
