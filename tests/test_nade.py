"""seqkit.models.nade: the NADE frame head against key-by-key references, exact normalisation, sampling
frequencies, every family end to end, and what it buys over independent keys."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chi2

from seqkit.models import FAMILIES, NADE, ModelConfig, build_model

K, H = 11, 8
CONTEXT = 16
TINY = dict(vocab_size=K, frames=True, frame_head="nade", nade_hidden=H, context=CONTEXT, window=4, d_embed=16,
            d_hidden=32, n_layers=2, n_heads=2)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make(family="lstm", **overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(family=family, **{**TINY, **overrides})).eval()


def random_head(keys, hidden, seed=0):
    """A NADE with weights far from their small initial values, and conditioning vectors to match."""
    torch.manual_seed(seed)
    head = NADE(ModelConfig(vocab_size=keys, frames=True, frame_head="nade", nade_hidden=hidden))
    with torch.no_grad():
        head.W.normal_(std=1.0)
        head.V.normal_(std=1.0)
    return head


def frames(*shape, p=0.3, seed=1):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def all_frames(keys):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=keys)))  # (2^keys, keys)


# --- the distribution ----------------------------------------------------------------------------

def test_nll_and_its_gradients_match_conditionals_computed_one_key_at_a_time():
    head = random_head(K, H)
    outputs = torch.randn(2, 5, K + H, requires_grad=True)
    targets = frames(2, 5, K)
    targets[0, 0], targets[0, 1] = 0, 1  # a silent frame and a full one
    nll = head.nll(outputs, targets)
    assert nll.shape == (2, 5)

    reference = torch.zeros(2, 5)
    for b, t in itertools.product(range(2), range(5)):
        b_v, b_h, v = outputs[b, t, :K], outputs[b, t, K:], targets[b, t]
        for k in range(K):
            hidden = torch.sigmoid(b_h + sum((head.W[:, j] * v[j] for j in range(k)), torch.zeros(H)))
            p_on = torch.sigmoid(b_v[k] + head.V[k] @ hidden)
            reference[b, t] -= torch.log(p_on if v[k] == 1 else 1 - p_on)
    torch.testing.assert_close(nll, reference, rtol=1e-5, atol=1e-5)

    weights = torch.randn(2, 5)  # any scalar function of the NLLs: the gradients must agree too
    parameters = [outputs, head.W, head.V]
    for got, want in zip(torch.autograd.grad((nll * weights).sum(), parameters),
                         torch.autograd.grad((reference * weights).sum(), parameters)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_probabilities_of_all_frames_sum_to_one():
    keys = 5
    head = random_head(keys, 7)
    outputs = torch.randn(3, keys + 7)  # three different steps
    every = all_frames(keys)
    nll = head.nll(outputs[:, None].expand(-1, len(every), -1), every.expand(3, -1, -1))  # (3, 32)
    torch.testing.assert_close(torch.exp(-nll).sum(1), torch.ones(3), rtol=0, atol=1e-5)


def frame_probabilities(head, outputs, temperature=1.0):
    """Probability of each of the 2^K frames when every conditional's logit is divided by temperature."""
    every = all_frames(head.keys)
    logits = head.logits(outputs.expand(len(every), -1), every) / temperature
    return torch.exp(-F.binary_cross_entropy_with_logits(logits, every, reduction="none").sum(-1)), every


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_sampled_frequencies_match_the_probabilities(temperature):
    head = random_head(3, 4, seed=2)
    outputs = torch.randn(1, 3 + 4, generator=torch.Generator().manual_seed(3))
    expected, every = frame_probabilities(head, outputs, temperature)
    n = 20_000
    samples = head.sample(outputs.expand(n, -1), temperature, torch.Generator().manual_seed(0))
    assert samples.shape == (n, 3) and set(samples.unique().tolist()) <= {0.0, 1.0}
    codes = (samples * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()  # matches all_frames' order
    counts = torch.bincount(codes, minlength=8).double()
    statistic = ((counts - n * expected.double()) ** 2 / (n * expected.double())).sum().item()
    assert statistic < chi2.ppf(0.999, df=7), (counts.tolist(), (n * expected).tolist())


def test_most_likely_takes_the_more_likely_value_of_each_conditional():
    head = random_head(K, H)
    outputs = torch.randn(2, 5, K + H)
    greedy = head.most_likely(outputs)
    assert greedy.shape == (2, 5, K)
    # The teacher-forced conditionals on the greedy frame must agree with every choice made.
    torch.testing.assert_close((head.logits(outputs, greedy) > 0).float(), greedy, rtol=0, atol=0)
    torch.testing.assert_close(head.sample(outputs[:, 0], temperature=0), greedy[:, 0], rtol=0, atol=0)


def test_sampling_is_reproducible_with_a_generator_and_rejects_negative_temperature():
    head = random_head(K, H)
    outputs = torch.randn(4, K + H)
    first = head.sample(outputs, 1.0, torch.Generator().manual_seed(5))
    torch.testing.assert_close(head.sample(outputs, 1.0, torch.Generator().manual_seed(5)), first, rtol=0, atol=0)
    with pytest.raises(ValueError, match="temperature"):
        head.sample(outputs, -1.0)


def test_nll_is_float32_under_bf16_autocast():
    head = random_head(K, H)
    outputs, targets = torch.randn(2, 5, K + H), frames(2, 5, K)
    exact = head.nll(outputs, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = head.nll(outputs, targets)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, exact, rtol=0, atol=1e-5)


# --- in every family ------------------------------------------------------------------------------

families = pytest.mark.parametrize("family", list(FAMILIES))


@families
def test_every_family_builds_with_nade_and_gives_finite_nll_and_samples(family):
    model = make(family)
    x = frames(3, CONTEXT, K)
    outputs, _ = model(x)
    assert outputs.shape == (3, CONTEXT, K + H)
    nll = model.frame_head.nll(outputs, x)
    assert nll.shape == (3, CONTEXT) and torch.isfinite(nll).all()
    assert abs(nll.mean().item() / K - math.log(2)) < 0.1  # near uniform at initialisation
    nll.mean().backward()
    assert model.frame_head.W.grad.abs().sum() > 0 and model.frame_head.V.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    sample = model.frame_head.sample(outputs[:, -1], 1.0, torch.Generator().manual_seed(0))
    assert sample.shape == (3, K) and set(sample.unique().tolist()) <= {0.0, 1.0}
    assert model.frame_head.most_likely(outputs).shape == (3, CONTEXT, K)


@families
def test_feeding_in_pieces_matches_one_full_call(family):
    model = make(family)
    x = frames(2, CONTEXT, K)
    full, _ = model(x)
    state, pieces, start = None, [], 0
    for size in [3, 1, 5, 7]:
        outputs, state = model(x[:, start:start + size], state)
        pieces.append(outputs)
        start += size
    pieces = torch.cat(pieces, dim=1)
    torch.testing.assert_close(pieces, full, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.frame_head.nll(pieces, x), model.frame_head.nll(full, x), rtol=0, atol=1e-4)


@families
def test_only_nade_configs_carry_a_frame_head(family):
    bernoulli = make(family, frame_head="bernoulli")
    tokens = make(family, frames=False, frame_head="bernoulli")
    assert bernoulli.frame_head is None and tokens.frame_head is None
    assert not any(name.startswith("frame_head.") for name in bernoulli.state_dict())
    assert bernoulli(frames(2, 4, K))[0].shape == (2, 4, K)


def test_state_dict_round_trip_keeps_the_nade():
    model = make("lstm")
    torch.manual_seed(1)
    other = build_model(model.cfg).eval()
    other.load_state_dict(model.state_dict())
    x = frames(2, CONTEXT, K)
    torch.testing.assert_close(other.frame_head.nll(other(x)[0], x), model.frame_head.nll(model(x)[0], x))


def test_nade_learns_chords_that_independent_keys_cannot():
    # Each frame is one of two chords, at random: ln 2 nats per frame is the best possible. Independent
    # keys can only say each of the 6 chord keys is on half the time: 6 ln 2 at best. Fresh batches every
    # step, so nothing can be memorised.
    chords = torch.tensor([[1, 0, 1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1, 0, 0]], dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)

    def batch(size):
        return chords[torch.randint(2, (size, CONTEXT + 1), generator=generator)]

    def loss(model, x):
        outputs, _ = model(x[:, :-1])
        if model.frame_head is not None:
            return model.frame_head.nll(outputs, x[:, 1:]).mean()
        return F.binary_cross_entropy_with_logits(outputs, x[:, 1:], reduction="none").sum(-1).mean()

    final = {}
    for head in ("bernoulli", "nade"):
        model = make("lstm", vocab_size=8, frame_head=head, n_layers=1).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(200):
            optimizer.zero_grad()
            loss(model, batch(16)).backward()
            optimizer.step()
        with torch.no_grad():
            final[head] = loss(model.eval(), batch(64)).item()
    assert final["bernoulli"] > 6 * math.log(2) - 0.1, final
    assert final["nade"] < 1.5 * math.log(2), final
