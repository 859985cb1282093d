"""seqkit.music: MIDI tokenizer round trips, corpus handling, piano rolls."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from music21 import converter, corpus

from seqkit.kinds import kind_from_dict
from seqkit.kinds.midi import MidiKind
from seqkit.music.corpus import augment_transpositions, bach_pieces, music_files, split_pieces, tokenize_pieces
from seqkit.music.notes import Note, NoteArrays, NoteList, changes_only, transpose_notes
from seqkit.music.pianoroll import plot_comparison, plot_pianoroll
from seqkit.music.tokenizer import TEMPOS, MidiTokenizer, krumhansl_shift, scale_shift

# without repeat signs: music21 writes repeats out in MIDI, while we read scores as notated
CHORALES = ["bach/bwv10.7", "bach/bwv194.12", "bach/bwv122.6"]  # 4/4 with a pickup, 3/4 with one, 3/4
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # music21/matplotlib caches stay out of the real home


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    """(parsed score, the same chorale written as MIDI by music21's own writer)."""
    folder = tmp_path_factory.mktemp("chorales")
    result = []
    for name in CHORALES:
        score = corpus.parse(name, forceSource=True)
        path = folder / f"{Path(name).name}.mid"
        score.write("midi", fp=str(path))
        result.append((score, path))
    return result


def key(notes):
    return [(n.pitch, n.start, n.duration) for n in notes]


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("index", range(len(CHORALES)))
def test_low_level_reader_matches_the_score(chorales, index):
    score, midi_path = chorales[index]
    tokenizer = MidiTokenizer()
    from_score, from_midi = tokenizer.notes_from_score(score), tokenizer.read_notes(midi_path)
    pickup = from_score[0].start - from_midi[0].start  # scores start a pickup bar part-way into bar 1
    shifted = [n._replace(start=n.start - pickup) for n in from_score]
    assert sorted(key(shifted)) == sorted(key(from_midi))
    assert from_midi.time_signatures[0][1:] == from_score.time_signatures[0][1:]


@pytest.mark.parametrize("index", range(len(CHORALES)))
def test_chorale_round_trip_through_tokens_and_midi(chorales, index, tmp_path):
    score, _ = chorales[index]
    tokenizer = MidiTokenizer(programs=True)
    notes = tokenizer.notes_from_score(score)  # a voice per program, all on the sixteenth-note grid
    longest = tokenizer.settings.max_duration_quarters
    notes[:] = [n._replace(duration=min(n.duration, longest)) for n in notes]  # final chords can be longer
    decoded = tokenizer.decode_notes(tokenizer.encode_notes(notes))
    assert decoded == notes
    assert decoded.time_signatures == notes.time_signatures
    tokenizer.write_midi(tokenizer.encode_notes(notes), tmp_path / "out.mid")
    back = tokenizer.read_notes(tmp_path / "out.mid")
    assert back == notes
    assert back.time_signatures == notes.time_signatures


@pytest.mark.parametrize("index", range(len(CHORALES)))
def test_music21_midi_round_trip_without_programs(chorales, index, tmp_path):
    _, midi_path = chorales[index]
    tokenizer = MidiTokenizer()
    notes = tokenizer.read_notes(midi_path)
    decoded = tokenizer.decode_notes(tokenizer.encode_notes(notes))
    # voices in unison merge into one note: same onsets, never longer
    assert {(n.pitch, n.start) for n in decoded} == {(n.pitch, n.start) for n in notes}
    longest = {}
    for n in notes:
        longest[n.pitch, n.start] = max(n.duration, longest.get((n.pitch, n.start), 0))
    assert all(n.duration <= longest[n.pitch, n.start] for n in decoded)
    tokenizer.write_midi(decoded, tmp_path / "out.mid")
    assert tokenizer.read_notes(tmp_path / "out.mid") == decoded


TOKENIZER_SETTINGS = st.fixed_dictionaries({
    "grid": st.sampled_from([1, 2, 3, 4, 6, 8]),
    "velocity_bins": st.sampled_from([0, 127]),  # 127 bins: every velocity is its own bin
    "programs": st.booleans(), "tempo": st.booleans(), "time_signature": st.booleans()})


@st.composite
def pieces_on_grid(draw):
    """(tokenizer, notes on its grid with no two of one pitch and program, expected time signatures/tempos)."""
    tokenizer = MidiTokenizer(**draw(TOKENIZER_SETTINGS))
    s = tokenizer.settings
    programs = st.integers(0, 127) if s.programs else st.just(0)
    keys = draw(st.lists(st.tuples(st.integers(0, 127), programs), min_size=1, max_size=25, unique=True))
    notes = [Note(pitch, draw(st.integers(0, 40 * s.grid)) / s.grid,
                  draw(st.integers(1, s.max_duration_quarters * s.grid)) / s.grid,
                  draw(st.integers(1, 127)) if s.velocity_bins else 64, program)
             for pitch, program in keys]
    meters = [value for kind, value in tokenizer.tokens if kind == "TimeSig"] or [(4, 4)]
    time_signatures, start = [], 0.0
    for meter, bars in draw(st.lists(st.tuples(st.sampled_from(meters), st.integers(1, 3)), min_size=1, max_size=4)):
        time_signatures.append((start, *meter))
        start += bars * meter[0] * 4 / meter[1]
    tempos = [(step / s.grid, bpm) for step, bpm in draw(st.lists(
        st.tuples(st.integers(0, 40 * s.grid), st.sampled_from(TEMPOS)), max_size=4, unique_by=lambda t: t[0]))]
    expected_tempos = changes_only([(t, float(bpm)) for t, bpm in tempos]) if s.tempo else []
    last_event = max([n.start for n in notes] + [t for t, _ in expected_tempos])  # bars run until here
    expected_meters = changes_only([m for m in time_signatures if m[0] <= last_event]) if s.time_signature else []
    return tokenizer, NoteList(notes, time_signatures, tempos), expected_meters, expected_tempos


@HYPOTHESIS
@given(pieces_on_grid())
def test_notes_on_the_grid_survive_encode_decode(piece):
    tokenizer, notes, time_signatures, tempos = piece
    ids = tokenizer.encode_notes(notes)
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    decoded = tokenizer.decode_notes(ids)
    assert decoded == sorted(notes, key=lambda n: (n.start, n.program, n.pitch))
    assert decoded.time_signatures == time_signatures
    assert decoded.tempos == tempos


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces_on_grid())
def test_notes_on_the_grid_survive_a_midi_file(tmp_path, piece):
    tokenizer, notes, time_signatures, tempos = piece
    tokenizer.write_midi(notes, tmp_path / "piece.mid")
    back = tokenizer.read_notes(tmp_path / "piece.mid")
    assert back == sorted(notes, key=lambda n: (n.start, n.program, n.pitch))
    assert back.time_signatures == time_signatures
    assert back.tempos == tempos  # MIDI stores microseconds per quarter: read back to 0.01 bpm


@HYPOTHESIS
@given(grid=st.sampled_from([1, 2, 4, 12]),
       onsets=st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=40))
def test_off_grid_onsets_move_at_most_half_a_step(grid, onsets):
    tokenizer = MidiTokenizer(grid=grid)
    notes = [Note(pitch, onset, 0.3) for pitch, onset in enumerate(onsets)]  # one note per pitch: no merging
    decoded = {n.pitch: n for n in tokenizer.decode_notes(tokenizer.encode_notes(notes))}
    assert len(decoded) == len(notes)
    for note in notes:
        assert abs(decoded[note.pitch].start - note.start) <= 0.5 / grid + 1e-9
        assert decoded[note.pitch].duration >= 1 / grid


def test_velocity_bins_keep_velocities_close():
    tokenizer = MidiTokenizer(velocity_bins=8)
    notes = [Note(60 + v % 40, v, 1, velocity=v) for v in range(1, 128)]
    decoded = tokenizer.decode_notes(tokenizer.encode_notes(notes))
    assert [abs(n.velocity - v) < 128 / 8 for n, v in zip(decoded, range(1, 128))] == [True] * 127
    assert tokenizer.decode_notes(tokenizer.encode_notes(decoded)) == decoded
    # a note whose Velocity token a model left out plays at a velocity the bins can write back
    [bare] = tokenizer.decode_notes([tokenizer.ids["Bar", None], tokenizer.ids["Position", 0],
                                     tokenizer.ids["Pitch", 60], tokenizer.ids["Duration", 1]])
    assert tokenizer.decode_notes(tokenizer.encode_notes([bare])) == [bare]


def test_same_pitch_overlaps_are_cut_where_the_next_note_starts():
    tokenizer = MidiTokenizer()
    notes = [Note(60, 0, 4), Note(60, 1, 1), Note(60, 1, 0.5), Note(62, 0, 1)]
    assert tokenizer.decode_notes(tokenizer.encode_notes(notes)) == [
        Note(60, 0, 1), Note(62, 0, 1), Note(60, 1, 1)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), programs=st.booleans(), velocity_bins=st.sampled_from([0, 4]))
def test_any_ids_decode_and_write_a_readable_midi_file(tmp_path, data, programs, velocity_bins):
    tokenizer = MidiTokenizer(programs=programs, velocity_bins=velocity_bins, tempo=True)
    ids = data.draw(st.lists(st.integers(0, tokenizer.vocab_size - 1), max_size=300))
    notes = tokenizer.decode_notes(ids)
    tokenizer.write_midi(ids, tmp_path / "sample.mid")
    assert tokenizer.read_notes(tmp_path / "sample.mid") == tokenizer.decode_notes(tokenizer.encode_notes(notes))
    if data.draw(st.integers(0, 9)) == 0:  # the full music21 parser is slow; sometimes is enough
        converter.parse(tmp_path / "sample.mid", forceSource=True)


def test_describe_names_tokens():
    tokenizer = MidiTokenizer(grid=4, programs=True, velocity_bins=4, tempo=True)
    ids = tokenizer.encode_notes(NoteList([Note(60, 0.5, 1, 100, 3)], [(0, 3, 4)], [(0, 97)]))
    assert tokenizer.describe(ids) == ["BOS", "Bar", "TimeSig_3/4", "Position_0", "Tempo_100", "Position_2",
                                       "Program_3", "Pitch_60", "Velocity_3", "Duration_4", "EOS"]
    assert len(set(tokenizer.names)) == tokenizer.vocab_size


def test_to_dict_from_dict_round_trip():
    tokenizer = MidiTokenizer(grid=8, programs=True, velocity_bins=16, tempo=True, pitch_low=21, pitch_high=108)
    restored = MidiTokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert restored.to_dict() == tokenizer.to_dict() and restored.to_dict()["kind"] == "midi"
    assert restored.names == tokenizer.names
    notes = [Note(30, 0.125, 2, 90, 5), Note(100, 3, 0.5, 20, 0)]
    assert restored.encode_notes(notes) == tokenizer.encode_notes(notes)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown MIDI tokenizer setting.*'colour'"):
        MidiTokenizer(colour=3)
    with pytest.raises(ValueError, match="max_bar_quarters"):
        MidiTokenizer(max_bar_quarters=2)
    with pytest.raises(ValueError, match="expected a 'midi' tokenizer"):
        MidiTokenizer.from_dict({"kind": "char"})


def test_file_without_notes_is_an_error_naming_it(tmp_path):
    tokenizer = MidiTokenizer()
    tokenizer.write_midi([], tmp_path / "silence.mid")
    with pytest.raises(ValueError, match=r"silence\.mid: no notes found"):
        tokenizer.encode_file(tmp_path / "silence.mid")


@pytest.mark.parametrize("content", [os.urandom(300), None], ids=["random bytes", "truncated MIDI"])
def test_corrupt_file_is_an_error_naming_it(tmp_path, content):
    tokenizer = MidiTokenizer()
    if content is None:
        tokenizer.write_midi([Note(60, 0, 1), Note(64, 1, 1)], tmp_path / "good.mid")
        content = (tmp_path / "good.mid").read_bytes()[:40]
    (tmp_path / "bad.mid").write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.mid: cannot read as MIDI/score") as error:
        tokenizer.encode_file(tmp_path / "bad.mid")
    assert "\n" not in str(error.value)


def test_scores_in_other_formats(tmp_path):
    tokenizer = MidiTokenizer(tempo=True)
    (tmp_path / "tune.abc").write_text("X:1\nT:Tune\nM:3/4\nL:1/8\nQ:1/4=100\nK:G\nGA B2 d2|c2 B2 A2-|A4 z2|\n")
    tune = tokenizer.read_notes(tmp_path / "tune.abc")
    assert [(n.pitch, n.start, n.duration) for n in tune][-2:] == [(71, 4, 1), (69, 5, 3)]  # tie merged
    assert tune.time_signatures == [(0, 3, 4)] and tune.tempos == [(0, 100)]
    assert len(tokenizer.read_notes(corpus.getWork("bach/bwv277.krn"))) > 200
    (tmp_path / "two.abc").write_text("X:1\nT:A\nM:4/4\nL:1/4\nK:C\nCDEF|\n\nX:2\nT:B\nM:4/4\nL:1/4\nK:C\nGABc|\n")
    with pytest.raises(ValueError, match=r"two\.abc: .*holds 2 pieces"):
        tokenizer.encode_file(tmp_path / "two.abc")


# --- corpus --------------------------------------------------------------------------------------

def test_bach_pieces_are_unique_four_part_chorales():
    pieces = bach_pieces()
    assert 350 <= len(pieces) <= 380
    assert pieces == sorted(set(pieces))
    assert all(Path(p).suffix in (".mxl", ".xml") for p in pieces)


def test_split_pieces_is_disjoint_deterministic_and_by_piece():
    pieces = [f"piece{i}.mid" for i in range(50)]
    split = split_pieces(pieces, seed=3)
    assert sorted(sum(split.values(), [])) == sorted(pieces)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (40, 5, 5)
    assert split_pieces(list(reversed(pieces)), seed=3) == split
    assert split_pieces(pieces, seed=4) != split
    assert all(len(part) == 1 for part in split_pieces(pieces[:3]).values())
    with pytest.raises(ValueError, match="too few"):
        split_pieces(pieces[:2])


def test_music_files_finds_music_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["x.mid", "a/y.MIDI", "a/b/z.mxl", "a/notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert music_files(tmp_path) == [tmp_path / "a/b/z.mxl", tmp_path / "a/y.MIDI", tmp_path / "x.mid"]
    assert music_files(tmp_path / "x.mid") == [tmp_path / "x.mid"]
    with pytest.raises(ValueError, match="no such file"):
        music_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a music file"):
        music_files(tmp_path / "a/notes.txt")


def test_tokenize_pieces_skips_bad_files_and_serves_the_cache(tmp_path, monkeypatch, capsys):
    tokenizer = MidiTokenizer()
    folder = tmp_path / "songs"
    for i in range(3):
        tokenizer.write_midi([Note(60 + i, 0, 1), Note(64 + i, 1, 2)], folder / f"good{i}.mid")
    (folder / "bad.mid").write_bytes(b"MThd not really a MIDI file")
    files, cache = music_files(folder), tmp_path / "cache"

    sequences, skipped = tokenize_pieces(files, tokenizer, cache, workers=2, progress=False)
    assert [list(s) for s in sequences] == [tokenizer.encode_file(f) for f in files if f.name != "bad.mid"]
    assert skipped == [str(folder / "bad.mid")]
    assert "bad.mid" in capsys.readouterr().err
    cached = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(cached) == 4

    def no_parsing(*args):
        raise AssertionError("parsed although cached")
    monkeypatch.setattr(MidiTokenizer, "read_notes", no_parsing)
    again, skipped_again = tokenize_pieces(files, tokenizer, cache, progress=False)
    assert [list(s) for s in again] == [list(s) for s in sequences] and skipped_again == skipped
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == cached
    assert "bad.mid" in capsys.readouterr().err


def test_transpositions_stay_in_the_pitch_range():
    tokenizer = MidiTokenizer(pitch_low=60, pitch_high=72)
    notes = NoteList([Note(60, 0, 1), Note(70, 1, 1)], [(0, 4, 4)])
    ids = np.array(tokenizer.encode_notes(notes), dtype=np.uint16)
    extra = augment_transpositions([ids], tokenizer)
    assert [tokenizer.decode_notes(e) for e in extra] == [transpose_notes(notes, 1), transpose_notes(notes, 2)]
    assert all(e.dtype == np.uint16 for e in extra)
    assert transpose_notes(notes, -61) == [Note(9, 1, 1)]


def test_normalize_key_moves_the_opening_bars_to_c_major_or_a_minor():
    tokenizer = MidiTokenizer(normalize_key=True)
    g_major = [67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67, 62]          # four 3/4 bars: G major
    elsewhere = [61, 63, 66, 68, 70, 73] * 4                             # then F-sharp major, ignored
    notes = NoteList([Note(p, i, 1) for i, p in enumerate(g_major + elsewhere)], [(0, 3, 4)])
    assert tokenizer.key_shift(NoteArrays.of(notes)) == 5               # G → C: up a fourth
    assert tokenizer.decode_notes(tokenizer.encode_notes(notes)) == transpose_notes(notes, 5)
    d_minor = NoteList([Note(p, i, 1) for i, p in enumerate([62, 64, 65, 67, 69, 70, 73, 74, 69, 65, 62, 57])])
    assert tokenizer.key_shift(NoteArrays.of(d_minor)) == -5            # D minor → A minor: down a fourth
    assert MidiTokenizer().key_shift(NoteArrays.of(notes)) == 0         # off by default


def test_the_scale_key_estimate_keeps_an_opening_on_its_dominant_on_the_white_keys():
    dominant = [67, 71, 74] * 4 + [60, 62, 64, 65, 69, 65, 65]           # C major's notes, mostly G-B-D
    piece = NoteArrays.of([Note(p, i / 2, 0.5) for i, p in enumerate(dominant)])
    assert MidiTokenizer(normalize_key=True).key_shift(piece) == 0      # already on C major's scale
    assert MidiTokenizer(normalize_key=True, key_estimate="krumhansl").key_shift(piece) == 5  # "G major"
    a_minor = np.bincount(np.array([69, 71, 72, 74, 76, 77, 80, 81, 64, 68, 71, 76]) % 12, minlength=12)
    assert scale_shift(a_minor) == 0                                    # one black key: G sharp
    assert krumhansl_shift(a_minor) == -4                               # its key: "E major"
    assert scale_shift(np.zeros(12)) == 0


def test_runs_saved_before_the_scale_estimate_keep_krumhansl():
    saved = json.loads(json.dumps(MidiKind(normalize_key=True).to_dict()))
    assert kind_from_dict(saved).settings.key_estimate == "scale"
    del saved["key_estimate"]
    assert kind_from_dict(saved).settings.key_estimate == "krumhansl"


# --- pictures ------------------------------------------------------------------------------------

def test_piano_rolls_are_written_as_png(tmp_path):
    prompt = [Note(60 + i % 5, i * 0.5, 0.5) for i in range(8)]
    continuation = [Note(67, 4, 1), Note(64, 5, 2)]
    plot_pianoroll(tmp_path / "roll.png", [("prompt", prompt, "grey"), ("continuation", continuation, "orange")],
                   title="roll")
    plot_comparison(tmp_path / "compare.png", prompt, continuation, continuation[:1])
    for name in ("roll.png", "compare.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
