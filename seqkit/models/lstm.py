from torch import nn

from .common import BatchState, ModelConfig, input_embedding, output_head


class LSTM(BatchState, nn.Module):
    """nn.LSTM with dropout between layers. State: (h, c), each (n_layers, B, d_hidden)."""
    state_batch_dim = 1

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = input_embedding(cfg)
        self.lstm = nn.LSTM(
            cfg.d_embed,
            cfg.d_hidden,
            cfg.n_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = output_head(cfg.d_hidden, cfg)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(self.dropout(out)), state
