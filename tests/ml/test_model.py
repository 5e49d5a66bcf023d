"""Network shapes and the BatchNorm folding used at export."""

from __future__ import annotations

import pytest
import torch

from digitlab.ml.export import fold_batchnorm
from digitlab.ml.model import ARCHITECTURES, build_model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("batch", [1, 7])
def test_each_architecture_maps_images_to_ten_logits(arch: str, batch: int) -> None:
    model = build_model(arch).eval()
    out = model(torch.rand(batch, 1, 28, 28))
    assert out.shape == (batch, 10)
    assert torch.isfinite(out).all()


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")


@pytest.mark.parametrize("arch", ["fast", "best"])
def test_folding_batchnorm_keeps_the_output(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch)
    # Non-trivial BatchNorm statistics, as after training.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(64, 1, 28, 28) * 2)
    model.eval()
    folded = fold_batchnorm(model)  # type: ignore[arg-type]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(16, 1, 28, 28)
    assert torch.allclose(model(x), folded(x), atol=1e-5)


def test_ensemble_outputs_log_probabilities_and_folds() -> None:
    from digitlab.ml.export import fold_model
    from digitlab.ml.model import Ensemble

    torch.manual_seed(0)
    ensemble = Ensemble([build_model("fast"), build_model("fast")]).eval()
    x = torch.rand(4, 1, 28, 28)
    out = ensemble(x)
    assert out.shape == (4, 10)
    members = [m(x).log_softmax(1) for m in ensemble.members]
    assert torch.allclose(out, (members[0] + members[1]) / 2, atol=1e-6)
    assert torch.allclose(fold_model(ensemble)(x), out, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_hidden_adds_one_dense_layer_before_the_output(arch: str) -> None:
    plain, extra = build_model(arch), build_model(arch, hidden=32)
    linears = [m for m in extra.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [32, 10]
    assert [type(m) for m in plain][-1] is torch.nn.Linear  # hidden=0: one output layer
    assert len(extra) == len(plain) + 2  # Linear + ReLU
    assert extra.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_a_negative_hidden_size_is_refused() -> None:
    with pytest.raises(ValueError, match="hidden must be 0"):
        build_model("fast", hidden=-4)
