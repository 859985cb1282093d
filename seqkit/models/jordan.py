import torch
from torch import nn

from .common import ACTIVATIONS, BatchState, ModelConfig, input_embedding, output_head, output_size


class JordanRNN(BatchState, nn.Module):
    """Jordan network: the previous step's output distribution is fed back into the hidden layer.

    h_t = act(W_x emb(x_t) + W_y y_{t-1} + b), logits_t = head(h_t), y_t = softmax(logits_t)
    (sigmoid for frames). State: y_{t-1}, (B, output_size(cfg)); zeros at the start of a sequence.
    """
    state_batch_dim = 0

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = input_embedding(cfg)
        self.input_proj = nn.Linear(cfg.d_embed, cfg.d_hidden)
        # With a NADE frame head the output is the NADE's conditioning vector [b_v, b_h], which with the
        # shared W, V is the predicted distribution; its sigmoid, [sigmoid(b_v), the NADE's first hidden
        # state], is fed back: bounded like the Bernoulli case, and needing no key-by-key pass per step.
        self.feedback = nn.Linear(output_size(cfg), cfg.d_hidden, bias=False)
        self.act = ACTIVATIONS[cfg.activation]()
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = output_head(cfg.d_hidden, cfg)

    def forward(self, x, state=None):
        inputs = self.input_proj(self.embed(x))  # all time steps at once; only the feedback is sequential
        y = inputs.new_zeros(x.size(0), self.feedback.in_features) if state is None else state
        steps = []
        for t in range(x.size(1)):
            logits = self.head(self.dropout(self.act(inputs[:, t] + self.feedback(y))))
            y = torch.sigmoid(logits) if self.cfg.frames else torch.softmax(logits, dim=-1)
            steps.append(logits)
        return torch.stack(steps, dim=1), y
