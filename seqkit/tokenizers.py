"""Text tokenizers (char, byte, SentencePiece bpe/unigram) behind one interface, and the registry of all kinds.

Every tokenizer has `kind`, `vocab_size`, `encode`, `decode`, `describe` (token names for people) and
`to_dict` / `tokenizer_from_dict` (plain JSON data, saved in the run directory).
"""
from __future__ import annotations

import base64
import io
from collections.abc import Iterable

TEXT_KINDS = ("char", "byte", "bpe", "unigram")
MUSIC_KINDS = ("midi", "pianoroll")
KINDS = TEXT_KINDS + MUSIC_KINDS


class CharTokenizer:
    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.vocab_size = len(self.chars)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        if not seen:
            raise ValueError("the corpus is empty: nothing to build a character vocabulary from")
        return cls(seen)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.index})
            shown = " ".join(repr(c) for c in unknown[:10])
            raise ValueError(f"characters not in this model's vocabulary: {shown}; "
                             "remove them, or train with --tokenizer byte/bpe") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [repr(self.chars[i]) for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars)}


class ByteTokenizer:
    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [f"<0x{i:02X}>" for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind}


class SentencePieceTokenizer:
    """SentencePiece with lossless settings: identity normalisation, whitespace kept, byte fallback."""

    _META = "\u2581"  # sentencepiece's space marker; a literal one in the text is sent as bytes

    def __init__(self, kind: str, model_proto: bytes):
        import sentencepiece as spm

        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.get_piece_size()
        self._meta_bytes = [self.sp.piece_to_id(f"<0x{b:02X}>") for b in self._META.encode()]

    @classmethod
    def fit(cls, kind: str, texts: Iterable[str], vocab_size: int) -> SentencePieceTokenizer:
        import sentencepiece as spm

        lines = (line for text in texts for line in text.splitlines(keepends=True))
        proto = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines, model_writer=proto, model_type=kind, vocab_size=vocab_size,
                normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
                byte_fallback=True, character_coverage=1.0, max_sentence_length=1 << 16,
                input_sentence_size=2_000_000, shuffle_input_sentence=True,
                bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2, num_threads=2,
                hard_vocab_limit=kind == "bpe")  # unigram: vocab_size is a ceiling on small corpora
        except RuntimeError as e:
            raise ValueError(f"sentencepiece could not train a {kind} vocabulary of {vocab_size}: "
                             f"{str(e).splitlines()[-1].split('] ')[-1]} (try a smaller --vocab-size)") from None
        return cls(kind, proto.getvalue())

    def encode(self, text: str) -> list[int]:
        parts = text.split(self._META)
        ids = self.sp.encode(parts[0]) if parts[0] else []
        for part in parts[1:]:
            ids += self._meta_bytes + (self.sp.encode(part) if part else [])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": base64.b64encode(self.model_proto).decode()}


def fit_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 1000):
    """Fit a text tokenizer on an iterable of texts (it may be consumed once)."""
    if kind == "char":
        return CharTokenizer.fit(texts)
    if kind == "byte":
        return ByteTokenizer()
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer.fit(kind, texts, vocab_size)
    raise ValueError(f"unknown text tokenizer {kind!r}; choose one of {', '.join(TEXT_KINDS)}")


def tokenizer_from_dict(d: dict):
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer(d["chars"])
    if kind == "byte":
        return ByteTokenizer()
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer(kind, base64.b64decode(d["model"]))
    if kind == "midi":
        from seqkit.music.tokenizer import MidiTokenizer
        return MidiTokenizer.from_dict(d)
    if kind == "pianoroll":
        from seqkit.music.frames import PianoRoll
        return PianoRoll.from_dict(d)
    raise ValueError(f"unknown tokenizer kind {kind!r}; known: {', '.join(KINDS)}")
