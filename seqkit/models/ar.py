from torch import nn

from .common import BatchState, ModelConfig, WindowEmbedding, output_head


class LinearAR(BatchState, nn.Module):
    """Linear autoregression: logits are a linear function of the embeddings of the last `window` inputs.

    State: the last window-1 inputs, (B, window-1) ids or (B, window-1, V) frames.
    """
    state_batch_dim = 0

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.window = WindowEmbedding(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = output_head(self.window.out_features, cfg)

    def forward(self, x, state=None):
        features, state = self.window(x, state)
        return self.head(self.dropout(features)), state
