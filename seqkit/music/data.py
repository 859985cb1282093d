"""Music corpora for training: pieces → split by piece → cached token ids, concatenated per split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from seqkit.config import DataConfig
from seqkit.data import Corpus
from seqkit.io import warn
from seqkit.music.corpus import augment_transpositions, bach_pieces, music_files, split_pieces, tokenize_pieces
from seqkit.music.near_copies import near_copy_groups
from seqkit.music.tokenizer import MidiTokenizer


def corpus_pieces(source: str) -> list[str]:
    return bach_pieces() if source == "bach" else [str(p) for p in music_files(source)]


def split_sequences(cfg: DataConfig, tokenizer, progress: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """{split: {piece: token ids}}: train/val/test by piece with a fixed seed (val and test each get
    `val_fraction` of the pieces), near-copies of a piece on its side (`near_copies`); one pool of workers
    tokenises all, unreadable files are skipped."""
    pieces = corpus_pieces(cfg.source)
    sequences, skipped = tokenize_pieces(pieces, tokenizer, Path(cfg.cache_dir) / "music", cfg.workers or None,
                                         progress=progress)
    if skipped:
        warn(f"skipped {len(skipped)} of {len(pieces)} files that could not be read (named above)")
    if not sequences:
        raise ValueError(f"{cfg.source}: none of its {len(pieces)} music files could be read")
    readable = [p for p in pieces if p not in set(skipped)]
    by_piece = dict(zip(readable, sequences))
    if len(readable) < 3:  # too few to split by piece: the last part of the music is held out instead
        whole = np.concatenate(sequences)
        n_val = max(int(len(whole) * cfg.val_fraction), 1)
        return {"train": {cfg.source: whole[:-n_val]}, "val": {cfg.source: whole[-n_val:]}, "test": {}}
    splits = split_corpus(readable, cfg)
    return {name: {p: by_piece[p] for p in names} for name, names in splits.items()}


def split_corpus(pieces: list[str], cfg: DataConfig) -> dict[str, list[str]]:
    """The pieces as train/val/test, seed 0, val and test each `val_fraction` of them, every group of
    near-copies on one side: the split every music run, the demos and the frame export use."""
    groups = near_copy_groups(pieces, Path(cfg.cache_dir) / "music")
    return split_pieces(pieces, seed=0, val=cfg.val_fraction, test=cfg.val_fraction, groups=groups)


def load_music_corpus(cfg: DataConfig, tokenizer: MidiTokenizer) -> Corpus:
    """Token ids of every piece, concatenated per split (train/val/test by piece)."""
    splits = {name: list(pieces.values()) for name, pieces in split_sequences(cfg, tokenizer).items()}
    if cfg.augment:
        splits["train"] = splits["train"] + augment_transpositions(splits["train"], tokenizer)
    join = lambda seqs: np.concatenate(seqs).astype(np.int64) if seqs else None  # noqa: E731
    return Corpus(tokenizer, join(splits["train"]), join(splits["val"]), join(splits["test"]))
