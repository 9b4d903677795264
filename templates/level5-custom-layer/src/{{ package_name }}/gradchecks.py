"""The gradient checks as a list: `check` prints them, the tests run them.

Smooth parts: each case builds a float64 function and its inputs, which must pass
`torch.autograd.gradcheck` (and `gradgradcheck` where marked) at PyTorch's default
tolerances.

The quantisers: their forward is a staircase whose true derivative is zero almost
everywhere, so finite differences cannot check them; what BitNet trains with is the
straight-through estimator, which defines the derivative as the identity. So each
quantiser's Jacobian, as autograd computes it, must equal the identity matrix
exactly, weights saturated by the clamp included (a zero there silently stops those
weights training, pytorch/ao#4806), and BitLinear's weight gradient must be exactly
that of a linear map of the quantised input. A zeroed, halved or clamp-masked
estimator fails these (the tests prove it by breaking it).
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


@dataclass(frozen=True)
class SteCase:
    """`build` gives f and the inputs; autograd's Jacobian of f, taken with respect to
    the first input, must equal `expected(inputs)` exactly."""

    name: str
    build: Builder
    expected: Callable[[tuple[Tensor, ...]], Tensor]


@dataclass(frozen=True)
class GradResult:
    name: str
    check: str  # "gradcheck", "gradgradcheck" or "Jacobian exact"
    passed: bool


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


def _identity(inputs: tuple[Tensor, ...]) -> Tensor:
    count = inputs[0].numel()
    return torch.eye(count, dtype=inputs[0].dtype)


def _saturated_weight(g: torch.Generator) -> Tensor:
    weight = torch.randn(4, 6, generator=g, dtype=torch.float64)
    # Far outside +-1.5 mean|W|: the clamp of round-clip saturates these.
    weight[0, :4] = torch.tensor([8.0, -8.0, 40.0, -40.0], dtype=torch.float64)
    return weight.requires_grad_()


def _ternary_weight_ste(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    def function(weight: Tensor) -> Tensor:
        return BF.fake_quant_weight(weight, "ternary")

    return function, (_saturated_weight(g),)


def _binary_weight_ste(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    def function(weight: Tensor) -> Tensor:
        return BF.fake_quant_weight(weight, "binary")

    return function, (_saturated_weight(g),)


def _activation_ste(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    def function(x: Tensor) -> Tensor:
        return BF.fake_quant_activation(x)

    return function, ((_randn(g, 3, 6) * 100).detach().requires_grad_(),)


def _bitlinear_weight_gradient(
    g: torch.Generator,
) -> tuple[Callable[..., Tensor], tuple[Tensor, ...]]:
    layer = BitLinear(6, 4).double()
    x = torch.randn(3, 6, generator=g, dtype=torch.float64)

    def function(weight: Tensor) -> Tensor:
        output: Tensor = torch.func.functional_call(layer, {"weight": weight}, (x,))
        return output

    return function, (_saturated_weight(g), x)


def _linear_of_quantised_input(inputs: tuple[Tensor, ...]) -> Tensor:
    """d/dW of x_q W^T, which is what the layer's estimators must give: x_q as the
    layer quantises it, W treated as if unquantised."""
    weight, x = inputs
    x_quantised = BF.fake_quant_activation(BF.rms_norm(x)).detach()
    return jacobian(
        lambda w: torch.nn.functional.linear(x_quantised, w), weight.detach()
    )


def jacobian(function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """d function(x) / dx as autograd computes it, one backward pass per output
    element: a matrix of (outputs, inputs), both flattened."""
    x = x.detach().requires_grad_()
    output = function(x).reshape(-1)
    rows = []
    for index in range(output.numel()):
        one_hot = torch.zeros_like(output)
        one_hot[index] = 1
        (row,) = torch.autograd.grad(output, x, one_hot, retain_graph=True)
        rows.append(row.reshape(-1))
    return torch.stack(rows)


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
)

STE_CASES = (
    SteCase(
        "ternary weight STE, saturated weights too", _ternary_weight_ste, _identity
    ),
    SteCase("binary weight STE", _binary_weight_ste, _identity),
    SteCase("int8 activation STE", _activation_ste, _identity),
    SteCase(
        "BitLinear weight gradient via both STEs",
        _bitlinear_weight_gradient,
        _linear_of_quantised_input,
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
            torch.autograd.gradcheck(function, inputs, raise_exception=False),
        )
    ]
    if case.second_order:
        passed = torch.autograd.gradgradcheck(function, inputs, raise_exception=False)
        results.append(GradResult(case.name, "gradgradcheck", passed))
    return results


def ste_jacobian(case: SteCase, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Autograd's Jacobian of the case's function with respect to its first input,
    as a matrix, and the one it must equal."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        function, inputs = case.build(torch.Generator().manual_seed(seed))
    return jacobian(function, inputs[0]), case.expected(inputs)


def run_ste_case(case: SteCase, seed: int = 0) -> GradResult:
    got, expected = ste_jacobian(case, seed)
    return GradResult(case.name, "Jacobian exact", torch.equal(got, expected))


def run_all(seed: int = 0) -> list[GradResult]:
    smooth = [result for case in CASES for result in run_case(case, seed)]
    return smooth + [run_ste_case(case, seed) for case in STE_CASES]


def ste_checks(seed: int = 0) -> dict[str, bool]:
    """Gradient flow through a whole layer, which `check` reports too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = BitLinear(32, 16)
    layer(torch.randn(4, 32, generator=generator)).square().sum().backward()
    grad = layer.weight.grad
    return {
        "BitLinear weight gradient finite and non-zero": bool(
            grad is not None
            and bool(torch.isfinite(grad).all())
            and grad.norm().item() > 0
        ),
    }
