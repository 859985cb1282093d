"""Polyphonic benchmark files: .mat, .npz or pickle files holding traindata/validdata/testdata, as the
published JSB Chorales, Piano-midi.de, Nottingham and MuseData sets are. Pickles (and object arrays in
.npz) are read without running code."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np

from seqkit.io import atomic_path, warn
from seqkit.music.roll import PianoRoll

BENCHMARK_SUFFIXES = (".mat", ".npz", ".pickle", ".pkl")
SPLIT_KEYS = {"train": ("traindata", "train"), "val": ("validdata", "valid", "val"), "test": ("testdata", "test")}


def read_benchmark_file(path, tokenizer: PianoRoll | None = None) -> dict[str, list[np.ndarray]]:
    """{"train", "val", "test"} → lists of (T, K) uint8 rolls from a .mat, .npz or pickle file holding
    traindata/validdata/testdata (or train/valid/test): lists of songs, each a (T, K or 128) binary array
    or, as in the original JSB pickle, a list of frames of active MIDI pitch numbers. Pickles (and object
    arrays in .npz) are read without running code: anything but plain data and numpy arrays is refused."""
    path = Path(path)
    tokenizer = tokenizer or PianoRoll()
    suffix = path.suffix.lower()
    if suffix == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError:
            raise ValueError(f"{path}: reading .mat files needs scipy (pip install scipy)") from None
        data = {k: np.asarray(v).ravel() for k, v in loadmat(path).items() if not k.startswith("__")}
    elif suffix == ".npz":
        data = _read_npz(path)
    elif suffix in (".pickle", ".pkl"):
        with open(path, "rb") as f:
            data = _safe_unpickle(f, path)
    else:
        raise ValueError(f"{path}: not a benchmark file; use one of {', '.join(BENCHMARK_SUFFIXES)}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of traindata/validdata/testdata, got {type(data).__name__}")
    data = {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}
    splits, dropped = {}, 0
    for split, names in SPLIT_KEYS.items():
        found = next((data[name] for name in names if name in data), None)
        if found is None:
            has = ", ".join(map(str, data)) or "nothing"
            raise ValueError(f"{path}: no {' or '.join(names)} in it (it has: {has})")
        splits[split] = []
        for i, song in enumerate(found):
            roll, n = _song_roll(song, tokenizer, f"{path}: {names[0]}[{i}]")
            splits[split].append(roll)
            dropped += n
    warn_dropped(path, dropped, tokenizer)
    return splits


def _song_roll(song, tokenizer: PianoRoll, where: str) -> tuple[np.ndarray, int]:
    """One song (binary frames, or frames of pitch numbers) → (T, K) uint8 roll, key-frames dropped."""
    K, low = tokenizer.vocab_size, tokenizer.low
    try:
        frames = np.asarray(song)
    except ValueError:  # ragged: frames of pitch numbers
        frames = None
    if frames is not None and frames.dtype != object and frames.ndim == 2 and frames.shape[1] in (K, 128) \
            and (frames.size == 0 or frames.max() <= 1):
        roll = frames != 0
        if frames.shape[1] == K:
            return roll.astype(np.uint8), 0
        kept = roll[:, low:tokenizer.high + 1]
        return kept.astype(np.uint8), int(roll.sum() - kept.sum())
    try:
        pitches = [[int(p) for p in np.ravel(frame)] for frame in song]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a song must be a (T, {K}) binary array or a list of frames of MIDI "
                         "pitch numbers") from None
    roll, dropped = np.zeros((len(pitches), K), dtype=np.uint8), 0
    for t, frame in enumerate(pitches):
        for p in frame:
            if low <= p <= tokenizer.high:
                roll[t, p - low] = 1
            else:
                dropped += 1
    return roll, dropped


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and numpy arrays; any other class or function is
    refused, so a file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _safe_unpickle(f, path):
    try:
        return _PlainUnpickler(f, encoding="latin1").load()  # latin1: Python 2 pickles of numpy arrays
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise ValueError(f"{path}: refused to load: not plain song data ({reason})") from None


def _read_npz(path: Path) -> dict:
    """The arrays of an .npz; object arrays are unpickled with _PlainUnpickler instead of np.load's pickle."""
    data = {}
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not an .npz file") from None
    with archive:
        for name in archive.namelist():
            with archive.open(name) as f:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                if dtype.hasobject:
                    array = _safe_unpickle(f, path)
                else:
                    array = np.frombuffer(f.read(), dtype=dtype).reshape(shape, order="F" if fortran else "C")
            data[name.removesuffix(".npy")] = array
    return data


def write_benchmark_file(path, songs_by_split: dict, low: int = 21) -> None:
    """Write {"train", "val", "test"} → lists of (T, K) binary rolls in the benchmark layout, atomically:
    .npz or .mat (traindata/validdata/testdata as object arrays / cell arrays of (T, K) uint8), or a
    JSB-style pickle (train/valid/test: lists of frames of active MIDI pitch numbers, key 0 = `low`)."""
    path = Path(path)
    names = {"train": "traindata", "val": "validdata", "test": "testdata"}
    suffix = path.suffix.lower()
    if suffix in (".npz", ".mat"):
        data = {}
        for split, name in names.items():
            songs = songs_by_split.get(split) or []
            data[name] = np.empty(len(songs), dtype=object)
            for i, song in enumerate(songs):
                data[name][i] = (np.asarray(song) != 0).astype(np.uint8)
    elif suffix in (".pickle", ".pkl"):
        data = {name.removesuffix("data"): [[[low + int(k) for k in np.nonzero(frame)[0]] for frame in song]
                                            for song in songs_by_split.get(split) or []]
                for split, name in names.items()}
    else:
        raise ValueError(f"{path}: write a benchmark file as one of {', '.join(BENCHMARK_SUFFIXES)}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a path would get ".npz" appended to the temp name
        if suffix == ".npz":
            np.savez_compressed(f, **data)
        elif suffix == ".mat":
            from scipy.io import savemat
            savemat(f, data)
        else:
            pickle.dump(data, f, protocol=4)


def warn_dropped(source, dropped: int, tokenizer: PianoRoll) -> None:
    if dropped:
        warn(f"{source}: dropped {dropped} sounding key-frames outside keys {tokenizer.low}..{tokenizer.high}")
