"""The gradient checks as a list: `check` prints them, the tests run them.

Each check builds a float64 function and its inputs. Smooth parts must pass
`torch.autograd.gradcheck` (and `gradgradcheck` where marked) at PyTorch's default
tolerances. The quantised forward is a staircase: its true derivative is zero almost
everywhere, while the straight-through estimator reports the identity, so gradcheck
must *fail* there. That check expects the failure, so nobody loosens tolerances to
make it pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from . import functional as BF
from .layers import BitAttention, BitFeedForward, BitLinear, RMSNorm

Builder = Callable[[torch.Generator], tuple[Callable[..., Tensor], tuple[Tensor, ...]]]


@dataclass(frozen=True)
class GradCase:
    name: str
    build: Builder
    second_order: bool = True  # also run gradgradcheck
    expect_pass: bool = True


@dataclass(frozen=True)
class GradResult:
    name: str
    check: str  # "gradcheck" or "gradgradcheck"
    expected: bool
    passed: bool

    @property
    def ok(self) -> bool:
        return self.expected == self.passed


def _randn(generator: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(
        *shape, generator=generator, dtype=torch.float64
    ).requires_grad_()


def _module_function(module: torch.nn.Module) -> Callable[..., Tensor]:
    """f(x, *params) = module(x) with its parameters replaced by the given tensors."""
    names = [name for name, _ in module.named_parameters()]

    def function(x: Tensor, *params: Tensor) -> Tensor:
        values = dict(zip(names, params, strict=True))
        output: Tensor = torch.func.functional_call(module, values, (x,))
        return output

    return function


def _with_params(
    module: torch.nn.Module, x: Tensor
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    module = module.double()
    with torch.no_grad():  # gains other than 1, so their gradients are exercised
        for child in module.modules():
            if isinstance(child, RMSNorm):
                child.weight.uniform_(0.5, 1.5)
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    return _module_function(module), (x, *params)


def _rms_norm(g: torch.Generator) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    return _with_params(RMSNorm(6), _randn(g, 3, 6))


def _bitlinear_unquantised(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    return _with_params(BitLinear(6, 5, bias=True, quantize=False), _randn(g, 2, 3, 6))


def _bitlinear_frozen_weights(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    # The quantised weights held fixed (codes / scale, no longer a function of W); the
    # input still passes through RMSNorm and a linear map with those ternary weights.
    weight = torch.randn(5, 6, generator=g, dtype=torch.float64)
    codes, scale = BF.absmean_ternary(weight)
    frozen = codes / scale

    def function(x: Tensor) -> Tensor:
        return BF.bitlinear(x, frozen, quantize=False)

    return function, (_randn(g, 2, 3, 6),)


def _feed_forward(activation: str, sub_norm: bool) -> Builder:
    def build(g: torch.Generator) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
        block = BitFeedForward(
            6, 8, activation=activation, sub_norm=sub_norm, quantize=False
        )
        return _with_params(block, _randn(g, 2, 3, 6))

    return build


def _attention(sub_norm: bool) -> Builder:
    def build(g: torch.Generator) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
        block = BitAttention(8, 2, sub_norm=sub_norm, quantize=False)
        return _with_params(block, _randn(g, 2, 3, 8))

    return build


def _rounded_forward(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    def function(x: Tensor) -> Tensor:
        return BF.fake_quant_activation(x)

    return function, (_randn(g, 3, 6),)


CASES = (
    GradCase("RMSNorm", _rms_norm),
    GradCase("BitLinear, quantize=False", _bitlinear_unquantised),
    GradCase("BitLinear, quantised weights frozen", _bitlinear_frozen_weights),
    # relu(x)^2 has a kink in its second derivative at 0: first order only.
    GradCase(
        "BitFeedForward relu2, quantize=False", _feed_forward("relu2", False), False
    ),
    GradCase("BitFeedForward swiglu, quantize=False", _feed_forward("swiglu", False)),
    GradCase("BitFeedForward swiglu, sub-norm", _feed_forward("swiglu", True)),
    GradCase("BitAttention, quantize=False", _attention(False)),
    GradCase("BitAttention, sub-norm", _attention(True)),
    GradCase(
        "rounded forward with STE (must fail)",
        _rounded_forward,
        False,
        expect_pass=False,
    ),
)


def run_case(case: GradCase, seed: int = 0) -> list[GradResult]:
    """gradcheck (and gradgradcheck) of one case; the same seed gives the same inputs
    and module weights, and the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        function, inputs = case.build(torch.Generator().manual_seed(seed))
    results = [
        GradResult(
            case.name,
            "gradcheck",
            case.expect_pass,
            torch.autograd.gradcheck(function, inputs, raise_exception=False),
        )
    ]
    if case.second_order:
        passed = torch.autograd.gradgradcheck(function, inputs, raise_exception=False)
        results.append(GradResult(case.name, "gradgradcheck", case.expect_pass, passed))
    return results


def run_all(seed: int = 0) -> list[GradResult]:
    return [result for case in CASES for result in run_case(case, seed)]


def ste_checks(seed: int = 0) -> dict[str, bool]:
    """The straight-through estimator, exactly: `check` reports these too."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(16, 32, generator=generator)
    weight[0, :4] = torch.tensor([10.0, -10.0, 50.0, -50.0])  # saturated by the clamp
    weight.requires_grad_()
    BF.fake_quant_weight(weight).sum().backward()  # type: ignore[no-untyped-call]
    assert weight.grad is not None
    x = (torch.randn(4, 32, generator=generator) * 100).requires_grad_()
    BF.fake_quant_activation(x).sum().backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    layer = BitLinear(32, 16)
    layer(torch.randn(4, 32, generator=generator)).square().sum().backward()
    grad = layer.weight.grad
    return {
        "weight STE gradient is exactly 1, saturated elements too": bool(
            torch.equal(weight.grad, torch.ones_like(weight))
        ),
        "activation STE gradient is exactly 1": bool(
            torch.equal(x.grad, torch.ones_like(x))
        ),
        "BitLinear weight gradient finite and non-zero": bool(
            grad is not None
            and bool(torch.isfinite(grad).all())
            and grad.norm().item() > 0
        ),
    }
