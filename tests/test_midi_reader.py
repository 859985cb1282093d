"""seqkit's MIDI reader (symusic's C++ reader) against music21's low-level MIDI reader on the same files.

Both read the same notes (onset, pitch, duration, velocity, program), tempos and time signatures, with one
difference: a note switched on and never off. music21 writes a grace note (no duration) as a note-off and
then a note-on at one tick, so its note-on is never closed; the music21 reader below held such a note to
the end of its track (a ghost note bars long), symusic drops it.
"""
import json
import struct
from collections import Counter, defaultdict, deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqkit.music.midi_file import midi_bytes, read_midi
from seqkit.music.notes import Note, NoteList, changes_only, sort_notes
from seqkit.music.tokenizer import MidiTokenizer, midi_ticks_per_quarter

# name: (music21 corpus work, last bar to keep or None for all, its time signature)
PIECES = {
    "bach-bwv315": ("bach/bwv315", None, (4, 4)),                       # pickup, a grace note
    "haydn-op1no1-i": ("haydn/opus1no1/movement1", 16, (6, 8)),         # string quartet, pickup
    "haydn-op1no1-iv": ("haydn/opus1no1/movement4", 24, (3, 4)),        # string quartet, pickup, triplets
    "mozart-k155-ii": ("mozart/k155/movement2", 16, (3, 4)),            # string quartet, triplets, grace notes
    "slip-jig": ("ryansMammoth/AndrewCareysSlipjig", None, (9, 8)),     # a folk tune from ABC
    "handel-lascia": ("handel/rinaldo/Lascia_chio_pianga", None, (4, 4)),  # 4/4 then 3/4, a tempo change
    "schubert-lindenbaum": ("schubert/Lindenbaum", 12, (3, 4)),         # song, triplets in the piano
}


def write_corpus_midi(folder: Path) -> dict[str, tuple[Path, int]]:
    """name → (the piece written as MIDI by music21 into `folder`, how many grace-note pitches it has).
    Repeat signs are removed first (excerpts cut through them); pieces already in `folder` are kept."""
    from music21 import bar, corpus, stream

    folder.mkdir(exist_ok=True)
    result = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(folder))  # music21's scratch files stay out of the real home
        for name, (work, last_bar, _) in PIECES.items():
            path, graces = folder / f"{name}.mid", folder / f"{name}.json"
            if not graces.exists():
                score = corpus.parse(work, forceSource=True)
                score = score.measures(0, last_bar) if last_bar else score
                for measure in score.recurse().getElementsByClass(stream.Measure):
                    for side in ("leftBarline", "rightBarline"):
                        if isinstance(getattr(measure, side), bar.Repeat):
                            setattr(measure, side, None)
                score.write("midi", fp=str(path))
                graces.write_text(json.dumps(sum(len(n.pitches) for n in score.recurse().notes if n.duration.isGrace)))
            result[name] = path, json.loads(graces.read_text())
    return result


@pytest.fixture(scope="session")
def corpus_midi(tmp_path_factory):
    """The pieces as MIDI files, written once per session (test_fidelity.py shares the folder)."""
    return write_corpus_midi(tmp_path_factory.getbasetemp() / "corpus-midi")


def music21_read_midi(data: bytes) -> tuple[NoteList, list[Note]]:
    """seqkit's reader before symusic, on music21's low-level `midi` module: (notes, the notes of them never
    switched off, which it ended with their track). Drum-channel notes are skipped and counted."""
    from music21 import midi

    midi_file = midi.MidiFile()
    midi_file.readstr(data)
    quarter = float(midi_file.ticksPerQuarterNote)
    notes, unclosed, time_signatures, tempos, drums = [], [], [], [], 0
    for track in midi_file.tracks:
        tick = 0
        programs = defaultdict(int)      # channel → program
        sounding = defaultdict(deque)    # (channel, pitch) → [(onset tick, velocity, program)]
        for event in track.events:
            if event.isDeltaTime():
                tick += event.time
            elif event.channel == 10 and event.isChannelEvent():
                drums += event.isNoteOn()
            elif event.isNoteOn():
                sounding[event.channel, event.pitch].append((tick, event.velocity, programs[event.channel]))
            elif event.isNoteOff() and sounding[event.channel, event.pitch]:
                onset, velocity, program = sounding[event.channel, event.pitch].popleft()
                notes.append(Note(event.pitch, onset / quarter, (tick - onset) / quarter, velocity, program))
            elif event.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                programs[event.channel] = event.data
            elif event.type == midi.MetaEvents.SET_TEMPO:
                tempos.append((tick / quarter, round(60_000_000 / int.from_bytes(event.data, "big"), 2)))
            elif event.type == midi.MetaEvents.TIME_SIGNATURE:
                time_signatures.append((tick / quarter, event.data[0], 2 ** event.data[1]))
        for (channel, pitch), onsets in sounding.items():
            unclosed += [Note(pitch, onset / quarter, (tick - onset) / quarter, velocity, program)
                         for onset, velocity, program in onsets]
    return NoteList(sort_notes(notes + unclosed), changes_only(time_signatures), changes_only(tempos), drums), unclosed


def assert_same_reading(data: bytes, unclosed_expected: int = 0) -> NoteList:
    ours = read_midi(data)
    theirs, unclosed = music21_read_midi(data)
    assert len(unclosed) == unclosed_expected
    assert ours == sort_notes((Counter(theirs) - Counter(unclosed)).elements())  # every field of every note
    assert ours.tempos == theirs.tempos and ours.time_signatures == theirs.time_signatures
    assert ours.drum_notes == theirs.drum_notes
    return ours


# --- files music21 wrote -------------------------------------------------------------------------

@pytest.mark.parametrize("name", PIECES)
def test_readers_agree_on_corpus_pieces_music21_wrote(corpus_midi, name):
    path, graces = corpus_midi[name]
    notes = assert_same_reading(path.read_bytes(), unclosed_expected=graces)  # graces: never switched off
    assert len(notes) > 50 and notes.time_signatures[0][1:] == PIECES[name][2]


def test_the_corpus_pieces_have_what_they_are_chosen_for(corpus_midi):
    notes = {name: read_midi(path.read_bytes()) for name, (path, _) in corpus_midi.items()}
    on_triplets = lambda piece: sum((n.start * 12) % 3 != 0 for n in piece)  # noqa: E731 (off the 16th grid)
    assert all(on_triplets(notes[name]) > 0 for name in ("haydn-op1no1-iv", "mozart-k155-ii", "schubert-lindenbaum"))
    assert len({n.program for n in notes["handel-lascia"]}) == 2 and len(notes["handel-lascia"].tempos) == 1
    assert [meter[1:] for meter in notes["handel-lascia"].time_signatures] == [(4, 4), (3, 4)]
    assert sum(graces for _, graces in corpus_midi.values()) >= 5


# --- files seqkit wrote --------------------------------------------------------------------------

@st.composite
def note_lists(draw):
    """Notes on a 1/48-quarter grid, same-pitch overlaps included, a few programs, tempos and meters."""
    notes = draw(st.lists(st.builds(
        Note, st.integers(0, 127), st.integers(0, 48 * 16).map(lambda k: k / 48),
        st.integers(1, 48 * 6).map(lambda k: k / 48), st.integers(1, 127), st.sampled_from([0, 0, 40, 73])),
        min_size=1, max_size=40))
    meters = draw(st.lists(st.tuples(st.integers(0, 16), st.integers(1, 12), st.sampled_from([2, 4, 8])), max_size=3))
    tempos = draw(st.lists(st.tuples(st.integers(0, 64).map(lambda k: k / 4), st.floats(30, 300)), max_size=3))
    return NoteList(sort_notes(notes), changes_only([(float(t), n, d) for t, n, d in meters]), changes_only(tempos))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(note_lists())
def test_readers_agree_on_files_seqkit_writes(notes):
    data = midi_bytes(notes, 480)
    back = assert_same_reading(data)
    overlapping = any(a.pitch == b.pitch and a.program == b.program and a.start < b.start < a.start + a.duration
                      for a in notes for b in notes)
    if not overlapping:  # overlaps pair first-on with first-off, as MIDI players do
        assert back == notes
    assert back.time_signatures == notes.time_signatures


@pytest.mark.parametrize("grid", [4, 7, 12, 24, 96])
def test_written_files_keep_every_grid_step(tmp_path, grid):
    from symusic import Score

    tokenizer = MidiTokenizer(grid=grid, programs=True)
    notes = [Note(40 + step % 50, step / grid, (1 + step % 7) / grid, 64, step % 3) for step in range(4 * grid)]
    tokenizer.write_midi(notes, tmp_path / "steps.mid")
    assert tokenizer.read_notes(tmp_path / "steps.mid") == sort_notes(notes)  # a note at every step
    resolution = Score(tmp_path / "steps.mid").ticks_per_quarter
    assert resolution == midi_ticks_per_quarter(grid) == (840 if grid == 7 else 480)


# --- events written by hand ----------------------------------------------------------------------

def smf(*tracks: list[tuple[int, bytes]], division: int = 96) -> bytes:
    """A format-1 MIDI file from tracks of (delta ticks, event bytes)."""
    chunks = b""
    for events in tracks:
        body = b"".join(bytes([delta]) + event for delta, event in events) + b"\x00\xff\x2f\x00"
        chunks += b"MTrk" + struct.pack(">I", len(body)) + body
    return b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), division) + chunks


def test_drums_zero_velocity_program_changes_overlaps_and_unclosed_notes():
    data = smf([(0, b"\xff\x51\x03\x07\xa1\x20"), (0, b"\xff\x58\x04\x06\x03\x18\x08")],  # 120 bpm, 6/8
               [(0, b"\x99\x24\x64"), (0, b"\x90\x3c\x50"),    # kick drum (channel 10), C4 on
                (48, b"\x89\x24\x00"), (0, b"\x90\x3c\x00"),   # kick off; C4 off as a velocity-0 note-on
                (0, b"\xc0\x28"), (0, b"\x90\x40\x60"),        # program 40 (violin), E4 on
                (24, b"\x90\x40\x70"), (24, b"\x80\x40\x00"),  # E4 again while sounding, then one off...
                (48, b"\x80\x40\x00"), (0, b"\x99\x26\x64"),   # ...ends the first E4, this one the second; snare
                (0, b"\x90\x43\x50"), (96, b"\x89\x26\x00")])  # G4 on, never switched off
    notes = read_midi(data)
    assert notes == [Note(60, 0.0, 0.5, 80, 0), Note(64, 0.5, 0.5, 96, 40), Note(64, 0.75, 0.75, 112, 40)]
    assert notes.drum_notes == 2 and notes.tempos == [(0.0, 120.0)] and notes.time_signatures == [(0.0, 6, 8)]
    theirs, unclosed = music21_read_midi(data)
    assert unclosed == [Note(67, 1.5, 1.0, 80, 40)]  # held to the end of the track by the music21 reader
    assert_same_reading(data, unclosed_expected=1)


def test_drum_notes_are_counted_and_a_drum_only_file_has_no_notes(tmp_path):
    path = tmp_path / "drums.mid"
    path.write_bytes(smf([(0, b"\x99\x24\x64"), (48, b"\x89\x24\x00"), (0, b"\x99\x26\x64"), (48, b"\x89\x26\x00")]))
    tokenizer = MidiTokenizer()
    notes = tokenizer.read_notes(path)
    assert notes == [] and notes.drum_notes == 2 and "drum_notes=2" in repr(notes)
    with pytest.raises(ValueError, match=r"drums\.mid: no notes found"):
        tokenizer.encode_file(path)


def test_smpte_timed_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "smpte.mid"
    path.write_bytes(smf([(0, b"\x90\x3c\x50"), (40, b"\x80\x3c\x00")], division=0xE728))  # 25 fps, 40 per frame
    with pytest.raises(ValueError, match="SMPTE"):
        read_midi(path.read_bytes())
    with pytest.raises(ValueError, match=r"smpte\.mid: cannot read as MIDI/score: SMPTE-timed") as error:
        MidiTokenizer().encode_file(path)
    assert "\n" not in str(error.value)
