"""Piano-roll corpora and batches: songs of frames split by piece, padded and masked windows for training
(random ones, or each batch lane's songs window after window for stateful training), whole songs for
validation (the state carried across each song, as `seqkit eval` does)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from seqkit.config import DataConfig
from seqkit.data import Corpus, TokenData
from seqkit.music.benchmark_file import BENCHMARK_SUFFIXES, read_benchmark_file, warn_dropped, write_benchmark_file
from seqkit.music.data import split_sequences
from seqkit.music.roll import PianoRoll

FRAME_CACHE_FORMAT = 1  # bump when the same file and settings would give a different roll


def load_frame_corpus(cfg: DataConfig, tokenizer: PianoRoll) -> Corpus:
    """Songs of `cfg.source` as lists of (T, K) uint8 rolls per split, read with `tokenizer`'s keys, frame
    rate and sampling (PianoRollKind.read_corpus builds it from `cfg`, or passes a trained run's). A
    benchmark file keeps its own split (and its own frame rate: set `frames_per_quarter` to it, 1 for the
    quarter-note JSB set, so written MIDI keeps time); music files are split by piece, seed 0, as
    `seqkit.music.data` does."""
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

    def __init__(self, frames_per_quarter: int, sampling: str):
        self.roll = PianoRoll(0, 127, frames_per_quarter, sampling)

    def to_dict(self) -> dict:
        return {"kind": "pianoroll", **self.roll.saved_settings(), "cache_format": FRAME_CACHE_FORMAT}

    def encode_file(self, path) -> np.ndarray:
        roll = self.roll.read_roll(path)
        if not roll.any():
            raise ValueError(f"{path}: no notes found")
        return roll


def _parsed_splits(cfg: DataConfig, tokenizer: PianoRoll) -> dict[str, list[np.ndarray]]:
    splits = {name: list(pieces.values()) for name, pieces in
              split_sequences(cfg, _AllKeys(tokenizer.frames_per_quarter, tokenizer.sampling)).items()}
    dropped = sum(int(roll.sum()) - int(roll[:, tokenizer.low:tokenizer.high + 1].sum())
                  for rolls in splits.values() for roll in rolls)
    warn_dropped(cfg.source, dropped, tokenizer)
    return {name: [roll[:, tokenizer.low:tokenizer.high + 1].astype(np.uint8) for roll in rolls]
            for name, rolls in splits.items()}


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


def export_frames(source: str, path, frames_per_quarter: int = 2, low: int = 21, high: int = 108,
                  cache_dir: str = "data/cache", val_fraction: float = 0.1, sampling: str = "snap") -> dict[str, int]:
    """Quantise a music source (`bach`, a folder, files) to frames (`sampling`: see PianoRoll), split it by
    piece (seed 0) and write it as a benchmark file. Returns the number of songs per split."""
    cfg = DataConfig(source=source, tokenizer="pianoroll", cache_dir=cache_dir, val_fraction=val_fraction,
                     frames_per_quarter=frames_per_quarter)
    corpus = load_frame_corpus(cfg, PianoRoll(low, high, frames_per_quarter, sampling))
    splits = {"train": corpus.train, "val": corpus.val, "test": corpus.test or []}
    write_benchmark_file(path, splits, low)
    return {name: len(songs) for name, songs in splits.items()}


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


class SongLanes(IterableDataset):
    """Stateful training's batches: each batch lane plays songs one after another, a window of context+1
    frames per step, each continuing where the lane's last one stopped (sharing its last frame, as chunks
    fed with the state carried do): (rolls (B, T+1, K), mask (B, T+1), fresh (B,), lanes (B,)), `fresh`
    marking the lanes whose window starts a song, `lanes` their numbers among all processes' lanes. Each
    lane plays every song once per pass, in an order drawn from (seed, lane, pass), so the window a lane
    plays at step n follows from (seed, n): a resumed run continues the same stream, and N processes × B
    lanes play what one process × N·B lanes plays."""

    def __init__(self, songs: list[np.ndarray], context: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.songs = [song for song in songs if len(song) >= 2]
        self.context, self.batch_size = context, batch_size
        self.seed, self.start_step, self.rank, self.world_size = seed, start_step, rank, world_size
        self.windows = np.array([-(-(len(song) - 1) // context) for song in self.songs])  # steps per song
        self.per_pass = int(self.windows.sum())
        self._orders = {}  # lane -> (pass, its song order, the step within the pass each song ends)

    def position(self, lane: int, step: int) -> tuple[int, int]:
        """(song, window of the song) that `lane` plays at `step`."""
        n, offset = divmod(step, self.per_pass)
        if self._orders.get(lane, (None,))[0] != n:
            order = np.random.default_rng((self.seed, lane, n)).permutation(len(self.songs))
            self._orders[lane] = n, order, np.cumsum(self.windows[order])
        _, order, ends = self._orders[lane]
        i = int(np.searchsorted(ends, offset, side="right"))
        return int(order[i]), int(offset - ends[i] + self.windows[order[i]])

    def __iter__(self):
        lanes = list(range(self.rank * self.batch_size, (self.rank + 1) * self.batch_size))
        step = self.start_step
        while True:
            picks = [self.position(lane, step) for lane in lanes]
            windows = [_window(self.songs[song], k * self.context, self.context + 1) for song, k in picks]
            yield (torch.stack([w[0] for w in windows]), torch.stack([w[1] for w in windows]),
                   torch.tensor([k == 0 for _, k in picks]), torch.tensor(lanes))
            step += 1


def lane_dim(model) -> int:
    """The dimension that runs over the batch in every tensor of `model`'s state (`state_batch_dim`); a
    ValueError for a state not kept per lane (the transformer's shared position)."""
    dim = getattr(model, "state_batch_dim", None)
    if dim is None:
        raise ValueError(f"train.stateful needs a model state kept per batch lane; the {model.cfg.family}'s "
                         "is not (its position is shared): train it without train.stateful")
    return dim


def _map(fn, state):
    """`state` with each tensor replaced by fn(tensor)."""
    return tuple(_map(fn, part) for part in state) if isinstance(state, tuple) else fn(state)


class LaneState:
    """Stateful training's memory: the model's state after each batch lane's last window of `context`
    frames, detached (truncated backpropagation through time), `lanes` the lanes' numbers, `dim` the
    state's batch dimension (lane_dim)."""

    def __init__(self, state, lanes: torch.Tensor, dim: int, context: int):
        self.state = _map(torch.Tensor.detach, state)
        self.lanes, self.dim, self.context = lanes.cpu(), dim, context

    def state_for(self, lanes: torch.Tensor, fresh: torch.Tensor):
        """The state to feed the windows of `lanes` from: each lane's own, zeros (a fresh state in every
        family but the transformer) where it starts a song or was not saved."""
        lanes = lanes.cpu()
        if torch.equal(lanes, self.lanes):
            state = self.state
        else:  # restored from a checkpoint holding every process's lanes: pick this process's
            where = {int(n): i for i, n in enumerate(self.lanes)}
            fresh = fresh | torch.tensor([int(n) not in where for n in lanes], device=fresh.device)
            index = torch.tensor([where.get(int(n), 0) for n in lanes])
            state = _map(lambda t: t.index_select(self.dim, index.to(t.device)), self.state)
        if fresh.all():
            return None
        shape = lambda t: [len(fresh) if i == self.dim else 1 for i in range(t.dim())]  # noqa: E731
        return _map(lambda t: t.to(fresh.device).masked_fill(fresh.view(shape(t)), 0), state)

    def saved(self, all_gather) -> dict:
        """Every process's lanes as plain tensors, for a checkpoint; `all_gather` is LightningModule's."""
        def gather(t, d):
            every = all_gather(t)  # (processes, ...) when there are several
            return (every if every.dim() == t.dim() else every.movedim(0, d).flatten(d, d + 1)).cpu()
        return {"state": _map(lambda t: gather(t, self.dim), self.state),
                "lanes": gather(self.lanes.to(_device(self.state)), 0), "dim": self.dim, "context": self.context}

    @classmethod
    def restored(cls, saved: dict, context: int) -> LaneState | None:
        """The saved lanes, or None (fresh states) when a resumed run changed the context: the lanes then
        play other windows."""
        dim = saved["dim"] if "dim" in saved else saved["dims"][0]  # older checkpoints: one per tensor, all equal
        return cls(saved["state"], saved["lanes"], dim, context) if saved["context"] == context else None


def _device(state) -> torch.device:
    return _device(state[0]) if isinstance(state, tuple) else state.device


class SongBatches(Dataset):
    """Whole songs, longest first, in batches padded to their longest song: (rolls (B, T, K), mask (B, T)).
    Validation scores every frame after a song's first with the state carried across the song, as
    `seqkit eval` does; `max_songs` keeps that many, spread over the split."""

    def __init__(self, songs: list[np.ndarray], batch_size: int, max_songs: int | None = None):
        songs = [song for song in songs if len(song) >= 2]
        if max_songs is not None and len(songs) > max_songs:
            songs = [songs[i] for i in np.linspace(0, len(songs) - 1, max_songs).astype(int)]
        self.songs, self.batch_size = sorted(songs, key=len, reverse=True), batch_size

    def __len__(self):
        return -(-len(self.songs) // self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(i)
        group = self.songs[i * self.batch_size:(i + 1) * self.batch_size]
        windows = [_window(song, 0, len(group[0])) for song in group]
        return torch.stack([w[0] for w in windows]), torch.stack([w[1] for w in windows])


class FrameData(TokenData):
    """TokenData over songs of frames: padded, masked random windows to train on (with `stateful`, each
    batch lane's songs window after window: SongLanes); whole songs to validate."""

    train_windows = RandomSongWindows

    def __init__(self, corpus: Corpus, context: int, batch_size: int, seed: int, val_batches: int,
                 stateful: bool = False):
        super().__init__(corpus, context, batch_size, seed, val_batches)
        if stateful:
            self.train_windows = SongLanes

    def make_val_set(self, corpus: Corpus, context: int, batch_size: int, val_batches: int):
        return SongBatches(corpus.val, batch_size, val_batches * batch_size)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=None, shuffle=False)

    @staticmethod
    def check(corpus: Corpus, context: int) -> None:
        for songs, what in ((corpus.train, "train"), (corpus.val, "validation")):
            if not any(len(song) >= 2 for song in songs or []):
                raise ValueError(f"the {what} split has no song of 2 or more frames: nothing to predict")
