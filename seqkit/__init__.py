"""seqkit: train next-token models on text and music, and sample from them."""
__version__ = "0.1.0"


def load(run_dir, device=None):
    """Load a run directory written by `seqkit train` → TrainedModel with .generate() and .evaluate()."""
    from seqkit.api import load as _load
    return _load(run_dir, device)


def train(config, callbacks=None):
    """Train from a seqkit.config.RunConfig; returns the run directory."""
    from seqkit.training import train as _train
    return _train(config, callbacks)


def resume(run_dir, overrides=(), callbacks=None):
    """Continue a run from its last checkpoint; `overrides` like ["train.max_steps=5000"]."""
    from seqkit.training import resume as _resume
    return _resume(run_dir, overrides, callbacks)
