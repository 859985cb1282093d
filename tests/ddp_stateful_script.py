"""Run by test_stateful as a subprocess (Lightning's DDP relaunches this file as rank 1): stateful frame
training with 2 CPU processes (gloo) of 2 lanes each, straight, or stopped at step 6 (after the
checkpoint of step 4), or resumed from that checkpoint."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import seqkit  # noqa: E402
from test_stateful import StopAt, stateful_config  # noqa: E402

songs, out, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if mode == "resumed":
    seqkit.resume(out / "stopped")
else:
    cfg = stateful_config(songs, "lstm", out / mode)
    cfg.train.devices, cfg.train.strategy, cfg.train.batch_size = "2", "ddp", 2
    try:
        seqkit.train(cfg, callbacks=[StopAt(6)] if mode == "stopped" else [])
    except RuntimeError as e:
        print(f"{e}", flush=True)
print(f"finished {mode}", flush=True)
