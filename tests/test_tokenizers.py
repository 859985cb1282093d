import pytest
from hypothesis import given, settings, strategies as st

from seqkit.tokenizers import ByteTokenizer, CharTokenizer, fit_tokenizer, tokenizer_from_dict
from conftest import TEXT

CORPUS = TEXT + "Ünïcödé ✓ 日本語 tabs\tand  double  spaces\r\n"


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def sentencepiece(request):
    return fit_tokenizer(request.param, [CORPUS], vocab_size=300)


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
    tok = fit_tokenizer(kind, [CORPUS], vocab_size=300)
    again = tokenizer_from_dict(tok.to_dict())
    assert again.vocab_size == tok.vocab_size
    assert again.encode(CORPUS) == tok.encode(CORPUS)


def test_unknown_kind_and_too_large_vocabulary():
    with pytest.raises(ValueError, match="unknown text tokenizer"):
        fit_tokenizer("wordpiece", [CORPUS])
    with pytest.raises(ValueError, match="smaller --vocab-size"):
        fit_tokenizer("bpe", ["abc"], vocab_size=5000)
