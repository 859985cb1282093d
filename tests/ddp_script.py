"""Run by test_reliability as a subprocess (Lightning's DDP relaunches this file as rank 1):
train with 2 CPU processes (gloo) at batch 4 each, and in one process at batch 8, same data."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import seqkit  # noqa: E402
from conftest import tiny_config  # noqa: E402

corpus, out, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
cfg = tiny_config(corpus, "lstm", out=out / mode, steps=6)
if mode == "ddp":
    cfg.train.devices, cfg.train.strategy, cfg.train.batch_size = "2", "ddp", 4
else:
    cfg.train.batch_size = 8
seqkit.train(cfg)
print(f"finished {mode}", flush=True)
