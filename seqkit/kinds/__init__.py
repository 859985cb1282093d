"""The registry of data kinds: text ids, MIDI events and piano-roll frames behind one interface
(`seqkit.kinds.base.DataKind`). `--tokenizer NAME` picks a kind to fit; a run's tokenizer.json names
the kind that reads it back."""
from __future__ import annotations

from pathlib import Path

from seqkit.data import MUSIC_BUILTINS, TEXT_BUILTINS, Corpus, is_music

from .base import DataKind
from .midi import MidiKind
from .pianoroll import PianoRollKind
from .text import BpeTokenizer, ByteTokenizer, CharTokenizer, UnigramTokenizer

KINDS: dict[str, type[DataKind]] = {kind.name: kind for kind in (
    CharTokenizer, ByteTokenizer, BpeTokenizer, UnigramTokenizer, MidiKind, PianoRollKind)}


def kind_class(name: str) -> type[DataKind]:
    if name not in KINDS:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def kind_from_dict(d: dict, config=None) -> DataKind:
    """A saved tokenizer.json → its data kind (files written before format versions load as version 1);
    `config`, the run's DataConfig, fills in settings saved before the kind recorded them."""
    if not isinstance(d, dict) or d.get("kind") not in KINDS:
        raise ValueError(f"unknown tokenizer kind {d.get('kind') if isinstance(d, dict) else d!r}; "
                         f"known: {', '.join(KINDS)}")
    return KINDS[d["kind"]].from_dict(d, config)


def default_kind(source: str) -> str:
    return "midi" if source not in TEXT_BUILTINS and is_music(source) else "char"


def check_source(kind_type: type[DataKind], source: str) -> None:
    """Raise a one-line error for a missing source, or one of the wrong sort for the kind."""
    if source not in TEXT_BUILTINS + MUSIC_BUILTINS and not Path(source).exists():
        raise FileNotFoundError(f"no such file, folder or built-in data set: {source} "
                                f"(built-ins: {', '.join(TEXT_BUILTINS + MUSIC_BUILTINS)})")
    kind_type.check_source(source, source not in TEXT_BUILTINS and is_music(source))


def load_corpus(cfg, kind: DataKind | None = None) -> Corpus:
    """Read `cfg.source` (a DataConfig) with `kind`, or with a new kind `cfg.tokenizer` fitted on it."""
    kind_type = type(kind) if kind is not None else kind_class(cfg.tokenizer)
    check_source(kind_type, cfg.source)
    return kind_type.read_corpus(cfg, kind)


__all__ = ["KINDS", "DataKind", "check_source", "default_kind", "kind_class", "kind_from_dict", "load_corpus"]
