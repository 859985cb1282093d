import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqkit.cli import app

runner = CliRunner()
TINY = ["--context", "16", "--max-steps", "6", "--batch-size", "8", "--accelerator", "cpu",
        "--set", "model.d_embed=16", "--set", "model.d_hidden=32", "--set", "train.val_every=3",
        "--set", "train.val_batches=2", "--set", "train.progress=false"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_generate_eval_info_end_to_end(text_file, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "seqkit.cli", "train", str(text_file), "--model", "transformer",
                             "--tokenizer", "bpe", "--vocab-size", "300", "--out", str(out),
                             "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"run directory: {out}" in result.stdout
    generated = invoke("generate", out, "--prompt", "it was", "--max-new-tokens", "15", "--seed", "1")
    assert generated.exit_code == 0 and generated.stdout.startswith("it was")
    several = invoke("generate", out, "--num-samples", "3", "--max-new-tokens", "5", "--top-k", "5", "--top-p", "0.9")
    assert several.stdout.count("--- sample") == 3
    evaluated = invoke("eval", out, text_file)
    assert evaluated.exit_code == 0 and "bits_per_char" in evaluated.stdout
    info = invoke("info", out)
    assert "transformer" in info.stdout and "bpe" in info.stdout and "parameters" in info.stdout


def test_config_file_is_read(text_file, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model:\n  family: ar\n  window: 3\ntrain:\n  max_steps: 4\n")
    result = invoke("train", text_file, "--config", config, "--out", tmp_path / "run", *TINY[:2], "--batch-size", "4",
                    "--set", "train.progress=false", "--set", f"data.cache_dir={tmp_path / 'cache'}",
                    "--set", "train.val_every=2")
    assert result.exit_code == 0, result.output
    info = invoke("info", tmp_path / "run").stdout
    assert "family     ar" in info and "window=3" in info and "steps      4" in info


def test_tokenize_round_trip(text_file, tmp_path):
    for kind in ("char", "byte", "unigram"):
        out = tmp_path / f"back-{kind}.txt"
        result = invoke("tokenize", text_file, "--tokenizer", kind, "--vocab-size", "280", "--roundtrip", out)
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == text_file.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["train", "no/such/file.txt"], "no such file"),
    (["train", "{empty}"], "empty"),
    (["train", "{binary}"], "not UTF-8"),
    (["train", "{short}", "--context", "64"], "fewer than the context"),
    (["train", "{text}", "--model", "gru"], "unknown model family"),
    (["train", "{text}", "--set", "model.widht=3"], "unknown config key"),
    (["train", "{text}", "--accelerator", "gpu", "--devices", "1"], "GPU"),
    (["generate", "no/such/run"], "no such run"),
    (["generate", "{tmp}"], "not a seqkit run"),
    (["info", "{text}"], "not a seqkit run"),
    (["train", "{text}", "--max-steps", "-5"], "train.max_steps must be at least 1, got -5"),
    (["train", "{text}", "--batch-size", "0"], "train.batch_size must be at least 1"),
    (["train", "{text}", "--lr", "0"], "train.lr must be greater than 0"),
    (["train", "{text}", "--set", "train.val_every=0"], "train.val_every must be at least 1"),
    (["train", "{text}", "--set", "data.val_fraction=0.7"], "data.val_fraction must be between 0 and 0.5"),
    (["train", "{text}", "--set", "data.grid=200"], "data.grid must be from 1 to 96"),
    (["train", "{text}", "--set", "data.frame_sampling=middle"], "data.frame_sampling must be snap or start"),
    (["export-frames", "bach", "never-written.npz", "--sampling", "middle"], "frame sampling must be snap or start"),
    (["train", "{text}", "--set", "data.augment=true", "--set", "data.normalize_key=true"], "set one of them"),
    (["train", "{text}", "--set", "data.key_estimate=fifths"], "data.key_estimate must be scale or krumhansl"),
    (["train", "{text}", "--tokenizer", "bpe", "--vocab-size", "10"], "--vocab-size"),
])
def test_bad_input_is_one_line_and_exit_1(args, message, text_file, tmp_path):
    files = {"{empty}": tmp_path / "empty.txt", "{binary}": tmp_path / "blob.txt", "{short}": tmp_path / "short.txt",
             "{text}": text_file, "{tmp}": tmp_path}
    files["{empty}"].write_text("")
    files["{binary}"].write_bytes(bytes(range(256)) * 4)
    files["{short}"].write_text("too short")
    args = [str(files.get(a, a)) for a in args] + ["--out", str(tmp_path / "out")] * (args[0] == "train")
    result = invoke(*args, *(["--set", f"data.cache_dir={tmp_path / 'cache'}"] if args[0] == "train" else []))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_bad_sampling_settings_print_nothing_but_the_error(trained_run):
    result = invoke("generate", trained_run, "--prompt", "it was", "--top-p", "1.5")
    assert result.exit_code == 1 and result.stdout == "" and "top-p must be in (0, 1]" in result.stderr
    result = invoke("generate", trained_run, "--max-new-tokens", "5", "--min-new-tokens", "6")
    assert result.exit_code == 1 and result.stdout == ""
    assert "min new tokens must be between 0 and max new tokens (5), got 6" in result.stderr


def test_progress_bar_counts_steps_not_epochs(text_file, tmp_path):
    result = invoke("train", text_file, "--out", tmp_path / "run", "--set", f"data.cache_dir={tmp_path / 'c'}",
                    *[a for a in TINY if a != "train.progress=false"][:-1])
    assert result.exit_code == 0, result.output
    assert "steps: 100%" in result.output and "6/6" in result.output
    assert "Epoch" not in result.output and "v_num" not in result.output


def test_prompt_outside_char_vocabulary(trained_run):
    result = invoke("generate", trained_run, "--prompt", "ζ§")
    assert result.exit_code == 1 and "'ζ'" in result.stderr and "'§'" in result.stderr


def test_compare_from_the_command_line(text_file, tmp_path):
    result = invoke("compare", text_file, "--models", "ar,elman", "--max-steps", "4", "--out", tmp_path / "cmp",
                    "--set", "context=16", "--set", "val_every=2", "--set", "d_hidden=32",
                    "--set", f"cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 0, result.output
    assert "| ar" in result.stdout and "| elman" in result.stdout
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000


def test_resume_takes_the_first_command_again_and_names_each_real_change(text_file, tmp_path):
    run = tmp_path / "run"
    first = ["train", text_file, "--model", "lstm", "--tokenizer", "char", "--out", run,
             "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY]
    assert invoke(*first).exit_code == 0
    resumed = invoke(*first, "--resume", "--max-steps", "9")
    assert resumed.exit_code == 0, resumed.output
    same = tmp_path / "same.yaml"
    same.write_text(f"model:\n  family: lstm\ndata:\n  source: {text_file}\n  tokenizer: char\n")
    resumed = invoke(*first, "--config", same, "--resume", "--max-steps", "12")
    assert resumed.exit_code == 0, resumed.output
    assert "steps      12" in invoke("info", run).stdout

    other = tmp_path / "other.txt"
    other.write_text(text_file.read_text())
    refused = invoke("train", other, *first[2:], "--model", "ar", "--resume", "--max-steps", "15")
    assert refused.exit_code == 1 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot change when resuming: model.family lstm -> ar, "
                           f"data.source {text_file} -> {other} ("), line
    assert "steps      12" in invoke("info", run).stdout


def test_text_out_writes_one_file_per_sample(trained_run, tmp_path):
    result = invoke("generate", trained_run, "--prompt", "it was", "--max-new-tokens", "10", "--seed", "1",
                    "--out", tmp_path / "one.txt")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one.txt").read_text().startswith("it was") and len((tmp_path / "one.txt").read_text()) == 16
    result = invoke("generate", trained_run, "--prompt", "it", "--max-new-tokens", "5", "--num-samples", "2",
                    "--out", tmp_path / "many.txt")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many_1.txt", "many_2.txt", "one.txt"]
    assert all(len((tmp_path / f"many_{i}.txt").read_text()) == 7 for i in (1, 2))


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_unwritable_text_out_is_one_line_and_leaves_nothing(where, trained_run, tmp_path):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "y.txt" if where == "under a file" else Path("/proc/x/y.txt")
    if where == "in /proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    result = invoke("generate", trained_run, "--prompt", "it", "--max-new-tokens", "5", "--out", out)
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot write {out}: "), line
    assert list(tmp_path.iterdir()) == [tmp_path / "a-file"]


def test_midi_prompt_for_a_text_run_names_the_cause(trained_run, tmp_path):
    from seqkit.music.notes import Note
    from seqkit.music.tokenizer import MidiTokenizer

    song = tmp_path / "song.mid"
    MidiTokenizer().write_midi([Note(60, 0.0, 1.0), Note(64, 1.0, 1.0)], song)
    result = invoke("generate", trained_run, "--prompt-file", song, "--max-new-tokens", "5")
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {song} is a MIDI file, but this run models text (char)"), line
    assert "--prompt" in line
