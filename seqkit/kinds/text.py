"""Text kinds: characters, bytes, and SentencePiece bpe / unigram pieces (lossless settings).

Every text kind has `encode`, `decode`, `describe` (token names for people) and `fit(texts, vocab_size)`;
its loss is next-token cross-entropy, reported as bits per character (bits per byte for `byte`) of
exactly the text scored.
"""
from __future__ import annotations

import base64
import contextlib
import io
import itertools
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np

from seqkit.data import Windows, load_text_corpus, text_blocks, text_files
from seqkit.generate import numbered
from seqkit.io import atomic_path
from seqkit.kinds.base import LN2, DataKind
from seqkit.music.tokenizer import MIDI_SUFFIXES


class TextKind(DataKind):
    file_encoding: ClassVar[str] = "utf-8"
    char_unit: ClassVar[str] = "char"  # what bits are counted per, besides tokens

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = 1000) -> TextKind:
        raise NotImplementedError

    def encode_block(self, text: str) -> list[int]:
        """A block of a corpus file, as read with `file_encoding`."""
        return self.encode(text)

    def count_chars(self, ids) -> int:
        return len(self.decode(ids))

    @classmethod
    def read_corpus(cls, cfg, fitted=None):
        return load_text_corpus(cfg, cls, fitted)

    @classmethod
    def tokenize_folder(cls, cfg) -> tuple[int, int, int]:
        corpus = load_text_corpus(cfg, cls)
        return len(text_files(cfg.source, Path(cfg.cache_dir))), len(corpus.train) + len(corpus.val), 0

    @classmethod
    def check_source(cls, source: str, is_music: bool) -> None:
        if is_music:
            raise ValueError(f"{source} is music, but the tokenizer is {cls.name} (text): train on it with "
                             "--tokenizer midi (or pianoroll), or evaluate a run trained on music")

    def chars_per_token(self, tokens, windows: Windows) -> float:
        chars = sum(self.count_chars(tokens[start + 1:start + windows.context + 1]) for start in windows.starts)
        return chars / max(len(windows) * windows.context, 1)

    def metrics(self, loss, chars_per_token=None) -> dict:
        metrics = super().metrics(loss)
        if chars_per_token:
            metrics[f"bits_per_{self.char_unit}"] = metrics["loss"] / LN2 / chars_per_token
        return metrics

    def start_prompt(self) -> list[int]:
        try:
            return self.encode("\n")
        except ValueError:
            return [0]

    def encode_prompt(self, prompt: str) -> list[int]:
        return self.encode(prompt)

    @classmethod
    def tokenize_file(cls, path: Path, cfg):
        """A file's tokens with a tokenizer fitted on the file itself → (kind, ids, write_back(ids, out))."""
        text = "".join(text_blocks(path, cls.file_encoding))
        if not text:
            raise ValueError(f"{path}: empty file")
        tokenizer = cls.fit([text], cfg.vocab_size)

        def write_back(ids, out: Path) -> str:
            with atomic_path(out) as tmp:
                tmp.write_bytes(tokenizer.decode_bytes(ids))
            return f"wrote {out}"

        return tokenizer, tokenizer.encode_block(text), write_back

    def decode_bytes(self, ids) -> bytes:
        return self.decode(ids).encode("utf-8")

    def write_samples(self, trained, prompt: str, sampling: dict, echo, prompt_file: Path | None = None,
                      out: Path | None = None, audio: bool = False, **_) -> None:
        """Text to stdout: one sample streamed as it is drawn, or several one after another; with `out`, a
        file per sample instead (out_1, out_2, ... for several)."""
        if audio:
            raise ValueError("--audio is for music models; this one writes text")
        if prompt_file is not None:
            prompt = self.read_prompt(prompt_file)
        if out is not None:
            self.write_texts(trained, prompt, sampling, Path(out), echo)
            return
        if sampling.get("num_samples", 1) > 1:
            for i, text in enumerate(trained.generate(prompt, **sampling)):
                echo(f"--- sample {i + 1} ---\n{text}")
            return
        ids = trained.encode_prompt(prompt)
        stream = trained.stream(list(ids), **sampling)
        first = next(stream)  # the sampling settings are checked before anything is printed
        shown = len(self.decode(ids))
        if prompt:
            sys.stdout.write(self.decode(ids))
        for token in itertools.chain([first], stream):
            ids.append(int(token[0]))
            text = self.decode(ids)
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                sys.stdout.write(text[shown:])
                sys.stdout.flush()
                shown = len(text)
        sys.stdout.write("\n")

    def read_prompt(self, path: Path) -> str:
        data = path.read_bytes()
        if data[:4] == b"MThd" or path.suffix.lower() in MIDI_SUFFIXES:
            raise ValueError(f"{path} is a MIDI file, but this run models text ({self.name}): prompt it with a "
                             "text file or --prompt, or generate from a run trained on music (--tokenizer midi)")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): a text "
                             "run's --prompt-file is a text file") from None

    def write_texts(self, trained, prompt: str, sampling: dict, out: Path, echo) -> None:
        """Each sample (prompt included) to its file, all written atomically: a failure leaves none half-written."""
        paths = numbered(out, sampling.get("num_samples", 1))
        try:
            with contextlib.ExitStack() as stack:
                temps = [stack.enter_context(atomic_path(path)) for path in paths]  # fails before any sampling
                for tmp, ids in zip(temps, trained.generate_ids(prompt, **sampling)):
                    tmp.write_bytes(self.decode_bytes(ids))
        except OSError as e:
            raise ValueError(f"cannot write {out}: {e.strerror or e}") from None
        for path in paths:
            echo(f"wrote {path}")


class CharTokenizer(TextKind):
    name = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.vocab_size = len(self.chars)

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = 1000) -> CharTokenizer:
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

    def count_chars(self, ids) -> int:
        return len(ids)

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [repr(self.chars[i]) for i in ids]

    def saved_settings(self) -> dict:
        return {"chars": "".join(self.chars)}


class ByteTokenizer(TextKind):
    name = "byte"
    file_encoding = "latin-1"
    char_unit = "byte"
    vocab_size = 256

    @classmethod
    def fit(cls, texts: Iterable[str] = (), vocab_size: int = 256) -> ByteTokenizer:
        return cls()

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_block(self, text: str) -> list[int]:
        return list(text.encode("latin-1"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids) -> bytes:
        return bytes(ids)

    def count_chars(self, ids) -> int:
        return len(ids)

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [f"<0x{i:02X}>" for i in ids]


class SentencePieceTokenizer(TextKind):
    """SentencePiece with lossless settings: identity normalisation, whitespace kept, byte fallback."""

    model_type: ClassVar[str] = ""
    _META = "\u2581"  # sentencepiece's space marker; a literal one in the text is sent as bytes

    def __init__(self, model: bytes | str):
        import sentencepiece as spm

        self.model_proto = base64.b64decode(model) if isinstance(model, str) else model
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        self.vocab_size = self.sp.get_piece_size()
        self._meta_bytes = [self.sp.piece_to_id(f"<0x{b:02X}>") for b in self._META.encode()]

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = 1000) -> SentencePieceTokenizer:
        import sentencepiece as spm

        lines = (line for text in texts for line in text.splitlines(keepends=True))
        proto = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines, model_writer=proto, model_type=cls.model_type, vocab_size=vocab_size,
                normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
                byte_fallback=True, character_coverage=1.0, max_sentence_length=1 << 16,
                input_sentence_size=2_000_000, shuffle_input_sentence=True,
                bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2, num_threads=2,
                hard_vocab_limit=cls.model_type == "bpe")  # unigram: vocab_size is a ceiling on small corpora
        except RuntimeError as e:
            raise ValueError(cls._fit_error(str(e), vocab_size)) from None
        return cls(proto.getvalue())

    @classmethod
    def _fit_error(cls, message: str, vocab_size: int) -> str:
        reason = message.splitlines()[-1].split("] ")[-1]
        numbers = [int(n) for n in re.findall(r"\d+", reason)]
        if "required" in reason and numbers:  # "Vocabulary size is smaller than required_chars. 300 vs 357."
            return (f"a {cls.model_type} vocabulary of {vocab_size} is too small for this corpus: its characters "
                    f"and the 256 byte pieces need at least {max(numbers)}; use --vocab-size {max(numbers)} or more")
        if "too high" in reason and numbers:  # "Vocabulary size too high (5000). Please set it to a value <= 263."
            return (f"a {cls.model_type} vocabulary of {vocab_size} is more than this corpus can fill; "
                    f"use --vocab-size {numbers[-1]} or less")
        return f"sentencepiece could not train a {cls.model_type} vocabulary of {vocab_size}: {reason}"

    def encode(self, text: str) -> list[int]:
        parts = text.split(self._META)
        ids = self.sp.encode(parts[0]) if parts[0] else []
        for part in parts[1:]:
            ids += self._meta_bytes + (self.sp.encode(part) if part else [])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode(np.asarray(ids, dtype=np.int64).tolist())

    def describe(self, ids: Iterable[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def saved_settings(self) -> dict:
        return {"model": base64.b64encode(self.model_proto).decode()}


class BpeTokenizer(SentencePieceTokenizer):
    name = model_type = "bpe"


class UnigramTokenizer(SentencePieceTokenizer):
    name = model_type = "unigram"
