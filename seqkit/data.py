"""Corpora → token ids cached on disk → batches of random windows (a LightningDataModule).

Text files are tokenised once, streamed into a flat memory-mapped array (uint16 where the vocabulary
fits, else uint32) keyed by a hash of their content and the tokenizer, so a corpus larger than RAM
trains without loading it. Music pieces are split into train/val/test by piece, never by position.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm import tqdm

from seqkit.config import DataConfig
from seqkit.io import atomic_path, write_json

TEXT_BUILTINS = ("pydoc",)
MUSIC_BUILTINS = ("bach",)
MUSIC_SUFFIXES = {".mid", ".midi", ".xml", ".musicxml", ".mxl", ".krn", ".abc"}
_BLOCK = 1 << 22  # characters per encode call when streaming a file


@dataclass
class Corpus:
    tokenizer: object  # the data kind (seqkit.kinds) that read it
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None = None


def is_music(source: str) -> bool:
    path = Path(source)
    if source in MUSIC_BUILTINS:
        return True
    if path.is_file():
        return path.suffix.lower() in MUSIC_SUFFIXES
    return path.is_dir() and any(p.suffix.lower() in MUSIC_SUFFIXES for p in path.rglob("*"))


# ---------------------------------------------------------------- text

def text_files(source: str, cache_dir: Path) -> list[Path]:
    if source == "pydoc":
        path = cache_dir / "builtin" / "pydoc.txt"
        if not path.exists():
            from pydoc_data.topics import topics
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text("\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n", encoding="utf-8")
        return [path]
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{source}: folder has no files")
    return files


def text_blocks(path: Path, encoding: str = "utf-8"):
    """Yield a file's text in blocks of about _BLOCK characters cut at line ends, so nothing loads whole.
    (The byte tokenizer reads latin-1: any bytes, 1:1 onto code points < 256.)"""
    carry = ""
    try:
        with open(path, encoding=encoding, newline="") as f:
            while chunk := f.read(_BLOCK):
                chunk = carry + chunk
                cut = chunk.rfind("\n") + 1 or len(chunk)
                carry = chunk[cut:]
                yield chunk[:cut]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text; use --tokenizer byte for binary or other encodings") from None
    if carry:
        yield carry


def _content_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:16]


_worker_tokenizer = None  # set before the pool forks: the workers inherit it


def _encode_in_worker(job):
    block, dtype = job
    return block, np.asarray(_worker_tokenizer.encode_block(block), dtype=dtype)


def _encode_blocks(tokenizer, blocks, dtype, parallel: bool, workers: int = 0):
    """(block, ids) in order; large corpora are encoded by `workers` processes (0: every core)."""
    global _worker_tokenizer
    workers = workers or cpu_count()
    if not parallel or workers == 1:
        yield from ((block, np.asarray(tokenizer.encode_block(block), dtype=dtype)) for block in blocks)
        return
    _worker_tokenizer = tokenizer
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_encode_in_worker, ((block, dtype) for block in blocks))


def load_text_corpus(cfg: DataConfig, kind_class, tokenizer=None) -> Corpus:
    """Text files → one cached memmap of ids, the last `val_fraction` held out. `tokenizer` (a text kind)
    encodes them, or a new `kind_class` fitted on them (cached by content and settings)."""
    cache_dir = Path(cfg.cache_dir)
    files = text_files(cfg.source, cache_dir)
    texts = lambda: (block for f in files for block in text_blocks(f, kind_class.file_encoding))  # noqa: E731
    if sum(f.stat().st_size for f in files) == 0:
        raise ValueError(f"{cfg.source}: empty; nothing to train on")
    corpus_hash = _content_hash(files)
    if tokenizer is None:
        path = cache_dir / f"tokenizer-{corpus_hash}-{kind_class.name}-{cfg.vocab_size}.json"
        tokenizer = _fitted_tokenizer(kind_class, texts, cfg.vocab_size, path)
    tok_hash = hashlib.sha256(json.dumps(tokenizer.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    bin_path = cache_dir / f"tokens-{corpus_hash}-{tok_hash}.bin"
    meta_path = bin_path.with_suffix(".json")
    if not meta_path.exists():
        dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
        n_tokens = n_chars = 0
        total = sum(f.stat().st_size for f in files)
        with atomic_path(bin_path) as tmp, open(tmp, "wb") as out, \
                tqdm(total=total, unit="B", unit_scale=True, desc="tokenizing", disable=total < 4 * _BLOCK) as bar:
            for block, ids in _encode_blocks(tokenizer, texts(), dtype, total > 2 * _BLOCK, cfg.workers):
                out.write(ids.tobytes())
                n_chars += len(block)
                n_tokens += len(ids)
                bar.update(len(block))
        write_json(meta_path, {"dtype": np.dtype(dtype).name, "tokens": n_tokens, "chars": n_chars})
    meta = json.loads(meta_path.read_text())
    tokens = np.memmap(bin_path, dtype=meta["dtype"], mode="r", shape=(meta["tokens"],))
    n_val = int(len(tokens) * cfg.val_fraction)
    return Corpus(tokenizer, tokens[:len(tokens) - n_val], tokens[len(tokens) - n_val:])


def _fitted_tokenizer(kind_class, texts, vocab_size: int, path: Path):
    if path.exists():
        return kind_class.from_dict(json.loads(path.read_text()))
    tokenizer = kind_class.fit(texts(), vocab_size)
    write_json(path, tokenizer.to_dict())
    return tokenizer


# ---------------------------------------------------------------- batches

class RandomWindows(IterableDataset):
    """Endless batches (B, T+1) of random windows. Step n's global batch (all ranks) depends only on
    (seed, n): a resumed run continues the same stream, and N processes × B see what one process × N·B sees."""

    def __init__(self, tokens: np.ndarray, context: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.tokens, self.context, self.batch_size = tokens, context, batch_size
        self.seed, self.start_step, self.rank, self.world_size = seed, start_step, rank, world_size
        self.offsets = np.arange(context + 1)

    def __iter__(self):
        step = self.start_step
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        while True:
            rng = np.random.default_rng((self.seed, step))
            starts = rng.integers(0, len(self.tokens) - self.context, self.batch_size * self.world_size)[mine]
            yield torch.from_numpy(self.tokens[starts[:, None] + self.offsets].astype(np.int64))
            step += 1


class Windows(Dataset):
    """Non-overlapping windows (T+1 tokens, sharing one token with the next) spread evenly over `tokens`."""

    def __init__(self, tokens: np.ndarray, context: int, max_windows: int | None = None):
        n = (len(tokens) - 1) // context
        self.starts = np.arange(n) * context
        if max_windows is not None and n > max_windows:
            self.starts = self.starts[np.linspace(0, n - 1, max_windows).astype(int)]
        self.tokens, self.context = tokens, context

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s = self.starts[i]
        return torch.from_numpy(self.tokens[s:s + self.context + 1].astype(np.int64))


def _own_generator() -> torch.Generator:
    # A DataLoader draws a seed from the global RNG each time it starts unless it has its own generator;
    # that draw would shift dropout's random stream between a straight run and a resumed one.
    return torch.Generator().manual_seed(0)


def check_length(tokens: np.ndarray, context: int, what: str) -> None:
    if len(tokens) < context + 2:
        raise ValueError(f"the {what} split has {len(tokens)} tokens, fewer than the context of {context} + 2: "
                         "use more data or a smaller --context")


class TokenData(pl.LightningDataModule):
    """Random training windows and fixed validation windows; FrameData swaps in its own."""

    train_windows = RandomWindows

    def make_val_set(self, corpus: Corpus, context: int, batch_size: int, val_batches: int):
        return Windows(corpus.val, context, val_batches * batch_size)

    def __init__(self, corpus: Corpus, context: int, batch_size: int, seed: int, val_batches: int):
        super().__init__()
        self.check(corpus, context)
        self.corpus, self.context, self.batch_size = corpus, context, batch_size
        self.seed, self.val_batches = seed, val_batches
        self.val_set = self.make_val_set(corpus, context, batch_size, val_batches)
        # characters per token of exactly the validation windows scored (text only), for bits per char
        self.chars_per_token = corpus.tokenizer.chars_per_token(corpus.val, self.val_set)

    @staticmethod
    def check(corpus: Corpus, context: int) -> None:
        check_length(corpus.train, context, "train")
        check_length(corpus.val, context, "validation")

    def train_dataloader(self):
        trainer = self.trainer
        windows = self.train_windows(self.corpus.train, self.context, self.batch_size, self.seed,
                                     trainer.global_step, trainer.global_rank, trainer.world_size)
        return DataLoader(windows, batch_size=None, pin_memory=torch.cuda.is_available(), generator=_own_generator())

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, generator=_own_generator())


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
