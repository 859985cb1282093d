import torch
import torch.nn.functional as F
from torch import nn

from .common import ACTIVATIONS, BatchState, ModelConfig, input_embedding, output_head

BUILTIN_NONLINEARITIES = ("tanh", "relu")


class ElmanRNN(BatchState, nn.Module):
    """Elman network (nn.RNN). State: h, (n_layers, B, d_hidden).

    nn.RNN only offers tanh and relu; other activations run a time loop over the same nn.RNN
    parameters, so the state dict is the same whatever the activation.
    """
    state_batch_dim = 1

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = input_embedding(cfg)
        builtin = cfg.activation in BUILTIN_NONLINEARITIES
        self.rnn = nn.RNN(
            cfg.d_embed,
            cfg.d_hidden,
            cfg.n_layers,
            nonlinearity=cfg.activation if builtin else "tanh",
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layers > 1 else 0.0,
        )
        self.manual_act = None if builtin else ACTIVATIONS[cfg.activation]()
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = output_head(cfg.d_hidden, cfg)

    def forward(self, x, state=None):
        inputs = self.embed(x)
        if self.manual_act is None:
            out, state = self.rnn(inputs, state)
        else:
            out, state = self.run_manual(inputs, state)
        return self.head(self.dropout(out)), state

    def run_manual(self, x, h0):
        if h0 is None:
            h0 = x.new_zeros(self.cfg.n_layers, x.size(0), self.cfg.d_hidden)
        last_hidden = []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.rnn.all_weights):
            if layer > 0:
                x = F.dropout(x, self.rnn.dropout, self.training)
            inputs = F.linear(x, w_ih, b_ih + b_hh)
            h = h0[layer]
            outputs = []
            for t in range(x.size(1)):
                h = self.manual_act(inputs[:, t] + F.linear(h, w_hh))
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            last_hidden.append(h)
        return x, torch.stack(last_hidden)
