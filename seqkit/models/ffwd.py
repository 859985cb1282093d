from torch import nn

from .common import ACTIVATIONS, BatchState, ModelConfig, WindowEmbedding, output_head


class FeedForward(BatchState, nn.Module):
    """An MLP with n_layers hidden layers over the embeddings of the last `window` inputs.

    State: the last window-1 inputs, (B, window-1) ids or (B, window-1, V) frames.
    """
    state_batch_dim = 0

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.window = WindowEmbedding(cfg)
        layers = []
        width = self.window.out_features
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, cfg.d_hidden), ACTIVATIONS[cfg.activation](), nn.Dropout(cfg.dropout)]
            width = cfg.d_hidden
        self.hidden = nn.Sequential(*layers)
        self.head = output_head(width, cfg)

    def forward(self, x, state=None):
        features, state = self.window(x, state)
        return self.head(self.hidden(features)), state
