import pytest
from hypothesis import given, settings, strategies as st

from seqkit.kinds import KINDS, kind_class, kind_from_dict
from seqkit.kinds.text import ByteTokenizer, CharTokenizer
from conftest import TEXT

CORPUS = TEXT + "Ünïcödé ✓ 日本語 tabs\tand  double  spaces\r\n"


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def sentencepiece(request):
    return KINDS[request.param].fit([CORPUS], vocab_size=300)


def test_char_round_trip_and_unknown_characters_named():
    tok = CharTokenizer.fit([CORPUS])
    assert tok.decode(tok.encode(CORPUS)) == CORPUS
    with pytest.raises(ValueError, match="'§'"):
        tok.encode("ab§")


@given(st.text())
def test_byte_round_trip_any_unicode(s):
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(s)) == s


@settings(max_examples=200, deadline=None)
@given(s=st.text())
def test_sentencepiece_round_trip_any_unicode(sentencepiece, s):
    assert sentencepiece.decode(sentencepiece.encode(s)) == s


def test_sentencepiece_keeps_whitespace_and_compresses(sentencepiece):
    s = "  it was\n\n the  age\t of ▁ wisdom "
    assert sentencepiece.decode(sentencepiece.encode(s)) == s
    assert len(sentencepiece.encode(TEXT)) < 0.85 * len(TEXT)  # most of the 300 ids are byte fallbacks


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram"])
def test_serialise_round_trip(kind):
    tok = KINDS[kind].fit([CORPUS], vocab_size=300)
    again = kind_from_dict(tok.to_dict())
    assert again == tok and again.vocab_size == tok.vocab_size
    assert again.encode(CORPUS) == tok.encode(CORPUS)


def test_unknown_kind_and_vocabulary_sizes_that_cannot_work():
    with pytest.raises(ValueError, match="unknown tokenizer 'wordpiece'"):
        kind_class("wordpiece")
    with pytest.raises(ValueError, match=r"use --vocab-size 263 or less"):
        KINDS["bpe"].fit(["abc"], vocab_size=5000)
    many_characters = "".join(chr(0x4E00 + i) for i in range(100)) * 3
    with pytest.raises(ValueError, match=r"need at least 357; use --vocab-size 357 or more"):
        KINDS["bpe"].fit([many_characters], vocab_size=300)
    assert KINDS["bpe"].fit([many_characters], vocab_size=357).vocab_size == 357
