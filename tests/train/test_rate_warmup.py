"""Rate warm-up: the bpp term's weight ramps from 0 to 1 over a fraction of the steps."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import ConfigError

from .conftest import tiny_config, tiny_objective


def test_rate_weight_schedule():
    config = tiny_config(steps=100, rate_warmup=0.2)
    assert [config.rate_weight(s) for s in (0, 10, 20, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert tiny_config(steps=100).rate_weight(0) == 1.0
    with pytest.raises(ConfigError, match="rate_warmup"):
        tiny_config(rate_warmup=1.0)


def test_objective_without_rate_is_the_weighted_distortion():
    objective, group, rate = tiny_objective()
    torch.manual_seed(1)
    full = objective(group, rate)
    objective.rate_weight = 0.0
    torch.manual_seed(1)
    distortion_only = objective(group, rate)
    # the same noise draws: only the rate term differs, by exactly the mean bpp
    assert distortion_only["mse"] == pytest.approx(float(full["mse"]), rel=1e-6)
    assert torch.allclose(full["loss"] - distortion_only["loss"], full["bpp"], rtol=1e-4)


def test_rate_delay_holds_the_rate_off_before_the_ramp():
    config = tiny_config(steps=100, rate_delay=0.3, rate_warmup=0.2)
    assert [config.rate_weight(s) for s in (0, 29, 30, 40, 50, 99)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    assert all(tiny_config(steps=100, rate_delay=1.0).rate_weight(s) == 0.0 for s in (0, 50, 99))
    assert tiny_config(steps=100, rate_delay=0.4).rate_weight(40) == 1.0  # no ramp: full weight after the delay
    with pytest.raises(ConfigError, match="rate_delay"):
        tiny_config(rate_delay=0.9, rate_warmup=0.2)
    with pytest.raises(ConfigError, match="rate_delay"):
        tiny_config(rate_delay=-0.1)


def test_train_modules_trains_only_the_named_p_frame_modules(tmp_path):
    from lwdvc.models import VideoCodec
    from lwdvc.train import train

    names = ["contextual_encoder", "contextual_decoder"]
    config = tiny_config(stage="residual", steps=2, lr=1e-3, train_modules=names, rate_delay=1.0)
    torch.manual_seed(config.seed)
    before = VideoCodec.from_config(config.codec_config())
    after = train(config, tmp_path, progress=False)["codec"]
    changed = {name.split(".")[1] for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(p, q)}
    assert changed == set(names)
    with pytest.raises(ConfigError, match="no module 'decoder'.*contextual_encoder"):
        train(tiny_config(stage="residual", steps=1, train_modules=["decoder"]), tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="train_modules is for the stages"):
        tiny_config(stage="intra", train_modules=names)


def test_fresh_modules_keep_the_seeds_weights_and_the_rest_comes_from_init(tmp_path):
    from lwdvc.checkpoint import load_checkpoint
    from lwdvc.models import VideoCodec
    from lwdvc.train import train

    first = tiny_config(stage="joint", steps=1, lr=1e-2, seed=1, family="dcvc_hem_skip")
    train(first, tmp_path / "a", progress=False)
    init = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    config = tiny_config(stage="residual", steps=1, lr=1e-3, seed=4, family="dcvc_hem_skip",
                         init=str(tmp_path / "a" / "checkpoint.pt"), fresh_modules=["recon_generation_net"],
                         train_modules=["contextual_decoder"], rate_delay=1.0)
    torch.manual_seed(config.seed)
    seeded = VideoCodec.from_config(config.codec_config())
    after = train(config, tmp_path / "b", progress=False)["codec"]
    for key, value in after.state_dict().items():
        if key.startswith("inter.recon_generation_net."):
            assert torch.equal(value, seeded.state_dict()[key]), key
        elif not key.startswith("inter.contextual_decoder."):
            assert torch.equal(value, init[key]), key
    assert not after.inter.recon_generation_net.recon_conv.weight.any()  # a fresh frame skip copies
    with pytest.raises(ConfigError, match="no module 'nope'.*fresh_modules takes"):
        train(tiny_config(stage="residual", steps=1, fresh_modules=["nope"]), tmp_path / "c", progress=False)
