"""The transformer: shapes, parameter counts, configs, bidirectionality, bad configs."""

import pytest

torch = pytest.importorskip("torch")

from lohard.lo import nae_sat  # noqa: E402
from lohard.mdm import (  # noqa: E402
    MODEL_CONFIGS,
    MaskedDiffusionTransformer,
    build_model,
    check_fits,
    model_config,
)


def test_registry_and_param_counts():
    assert set(MODEL_CONFIGS) >= {"mdm-19m", "mdm-6m", "tiny"}
    c19 = model_config("mdm-19m")
    assert (c19.n_layers, c19.d_model, c19.n_heads) == (8, 384, 6)
    # Counted by hand: (V+1) d + n_layers (4 d^2 + 3 d h + 2 d) + d + d V with h = 4 d.
    assert c19.n_params(3) == 4 * 384 + 8 * (4 * 384**2 + 3 * 384 * 1536 + 768) + 384 + 384 * 3
    assert 18e6 < c19.n_params(3) < 20e6
    assert 5.5e6 < model_config("mdm-6m").n_params(3) < 6.5e6
    tiny = MaskedDiffusionTransformer("tiny", 3)
    assert tiny.n_params == model_config("tiny").n_params(3)
    with pytest.raises(ValueError, match="unknown model config 'mdm-7b'; choose one of"):
        model_config("mdm-7b")
    assert model_config("tiny", max_seq_len=64).max_seq_len == 64


def test_output_is_over_data_values_and_bidirectional():
    torch.manual_seed(0)
    d = nae_sat(6, 10, rng=0)
    m = build_model(model_config("tiny", n_layers=1), d).eval()
    x = torch.full((2, d.length), d.mask_id)
    x[1, -1] = 1
    out = m(x)
    assert out.shape == (2, d.length, d.vocab_size)  # the mask id is never predicted
    # Changing the last token changes the first position's logits: attention is not causal.
    assert not torch.allclose(out[0, 0], out[1, 0])
    assert torch.isfinite(out).all()


def test_bad_configs_are_rejected():
    d = nae_sat(20, 280, rng=0)
    with pytest.raises(ValueError, match="max_seq_len = 128 is shorter than the data's "
                                         "sequence length L = 300"):
        check_fits(model_config("tiny"), d)
    with pytest.raises(ValueError, match="vocab_size = 2 is smaller"):
        check_fits(model_config("mdm-6m", vocab_size=2),
                   nae_sat(6, 10, trailing_token=True, rng=0))
    with pytest.raises(ValueError, match="divisible by n_heads"):
        model_config("tiny", n_heads=3)
    with pytest.raises(ValueError, match="even head dimension"):
        model_config("tiny", d_model=60, n_heads=4)
    for key in ("rope_base", "norm_eps", "mlp_ratio"):
        for bad in (-1.0, 0.0, float("nan")):
            with pytest.raises(ValueError, match=f"{key} must be finite and > 0"):
                model_config("tiny", **{key: bad})
    m = build_model("tiny", nae_sat(6, 10, rng=0))
    with pytest.raises(ValueError, match="exceeds the model's max_seq_len"):
        m(torch.zeros(1, 129, dtype=torch.long))


def test_learned_pos_option_counts():
    cfg = model_config("tiny", learned_pos=True)
    assert MaskedDiffusionTransformer(cfg, 2).n_params == cfg.n_params(2)
