"""seqkit.music.fidelity: what a tokenizer round trip does to each note, on hand-made notes and on music21
corpus pieces (several composers; 3/4, 6/8, 9/8; pickups and triplets) written as MIDI by music21."""
import re

import pytest
from music21 import corpus
from test_midi_reader import PIECES, write_corpus_midi

from seqkit.music.fidelity import fidelity_lines, round_trip_fidelity
from seqkit.music.notes import Note, NoteList
from seqkit.music.tokenizer import MidiTokenizer


@pytest.fixture(scope="session")
def corpus_midi(tmp_path_factory):
    """The pieces as MIDI files, written once per session (test_midi_reader.py shares the folder)."""
    return write_corpus_midi(tmp_path_factory.getbasetemp() / "corpus-midi")


def test_every_reason_is_counted_once_and_named():
    tokenizer = MidiTokenizer(grid=4, max_duration_quarters=2, pitch_low=21, pitch_high=108)
    notes = NoteList([
        Note(60, 0, 1), Note(62, 1, 0.5),          # exact
        Note(64, 1 / 3, 1), Note(65, 2, 0.3),      # moved: onset, duration
        Note(67, 3, 1, program=1), Note(67, 3, 0.5, program=2),  # merged: the shorter of a unison
        Note(69, 4, 2), Note(69, 5, 1),            # ended early: the first, where the second starts
        Note(71, 6, 3),                            # cut at 2 quarters
        Note(10, 0, 1), Note(120, 1, 1),           # outside 21..108
    ], drum_notes=3)
    counts = round_trip_fidelity(notes, tokenizer)
    assert (counts.notes, counts.exact, counts.moved, counts.merged, counts.ended_early, counts.cut,
            counts.out_of_range, counts.drums) == (14, 4, 2, 1, 1, 1, 2, 3)
    lines = fidelity_lines(counts)
    assert lines[0] == "round trip: 4 of 14 notes exact"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "moved to the grid", "merged", "ended early", "cut", "dropped", "drum notes skipped"]
    assert "programs=True keeps parts apart" in lines[2] and "21..108" in lines[5]
    assert fidelity_lines(round_trip_fidelity(notes[:2], tokenizer)) == ["round trip: 2 of 2 notes exact"]


def test_programs_keep_parts_in_unison_apart():
    score = corpus.parse("bach/bwv10.7", forceSource=True)  # voices meet on one pitch now and then
    notes = MidiTokenizer().notes_from_score(score)  # each part's index is its program
    together = round_trip_fidelity(notes, MidiTokenizer())
    apart = round_trip_fidelity(notes, MidiTokenizer(programs=True))
    assert together.merged > 0 and together.exact < len(notes)
    assert apart.merged == apart.ended_early == 0 and apart.exact + apart.cut == apart.notes == len(notes)


def test_a_key_normalised_round_trip_is_exact_at_the_new_pitches_and_says_so():
    score = corpus.parse("bach/bwv10.7", forceSource=True)  # G minor; Krumhansl-Schmuckler reads bars 1-4 as F major
    notes = MidiTokenizer().notes_from_score(score)
    plain = round_trip_fidelity(notes, MidiTokenizer(programs=True))
    moved, by_key = (round_trip_fidelity(notes, MidiTokenizer(programs=True, normalize_key=True, key_estimate=estimate))
                     for estimate in ("scale", "krumhansl"))
    assert (plain.transposed, moved.transposed, by_key.transposed) == (0, 2, -5)  # G minor to A minor; "F major" to C
    assert moved.exact == by_key.exact == plain.exact > 0.9 * len(notes)
    assert fidelity_lines(moved)[1] == "  transposed by +2 semitones (normalize_key: the opening onto C major's scale)"
    assert fidelity_lines(by_key)[1] == "  transposed by -5 semitones (normalize_key: the opening in C major or A minor)"


def onsets(notes):
    return {(n.start, n.pitch) for n in notes}


ON_THE_GRID = [name for name in PIECES if name != "schubert-lindenbaum"]  # see the last test


@pytest.mark.parametrize("name", ON_THE_GRID)
@pytest.mark.parametrize("programs", [False, True])
def test_grid_24_brings_back_every_onset_of_corpus_pieces(corpus_midi, name, programs):
    tokenizer = MidiTokenizer(grid=24, programs=programs)
    notes = tokenizer.read_notes(corpus_midi[name][0])
    decoded = tokenizer.decode_notes(tokenizer.encode_notes(notes))
    assert onsets(decoded) == onsets(notes)  # thirty-seconds and triplets included
    counts = round_trip_fidelity(notes, tokenizer)
    part = (lambda n: n.program) if programs else (lambda n: 0)  # noqa: E731
    assert counts.merged == len(notes) - len({(part(n), n.start, n.pitch) for n in notes})  # unisons only
    assert counts.moved == counts.out_of_range == counts.drums == 0
    assert counts.exact + counts.merged + counts.ended_early + counts.cut == counts.notes == len(notes)
    assert counts.exact >= len(notes) * 0.8
    assert re.fullmatch(r"round trip: \d+ of \d+ notes exact", fidelity_lines(counts)[0])


@pytest.mark.parametrize("name", ["haydn-op1no1-iv", "mozart-k155-ii", "handel-lascia"])
def test_grid_4_moves_triplets_and_the_report_says_so(corpus_midi, name):
    notes = MidiTokenizer().read_notes(corpus_midi[name][0])
    coarse, fine = (round_trip_fidelity(notes, MidiTokenizer(grid=grid)) for grid in (4, 24))
    assert coarse.moved > 0 and fine.moved == 0 and coarse.exact < fine.exact
    assert any(line.startswith("  moved to the grid: ") for line in fidelity_lines(coarse))


def test_the_default_grid_keeps_eighth_note_triplets(corpus_midi):
    notes = MidiTokenizer().read_notes(corpus_midi["mozart-k155-ii"][0])  # triplets, nothing shorter
    assert round_trip_fidelity(notes, MidiTokenizer(grid=4)).moved > 0
    assert round_trip_fidelity(notes, MidiTokenizer()).moved == 0


def test_notes_off_every_grid_are_reported_as_moved(corpus_midi):
    """music21 reads this MusicXML's sixteenth-note sextuplets as 21/128 and 43/256 of a quarter (the file's
    rounding), so its MIDI export has them off any grid: the report says so instead of calling them exact."""
    notes = MidiTokenizer().read_notes(corpus_midi["schubert-lindenbaum"][0])
    assert all(round_trip_fidelity(notes, MidiTokenizer(grid=grid)).moved > 50 for grid in (4, 12, 24))
