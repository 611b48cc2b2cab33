"""Implicit behavioural cloning (IBC): an energy over (observation, action), minimised to act.

Florence et al. (2021) learn an energy :math:`E_\\theta(o, a)` that is low on demonstrated actions
and act by minimising it, :math:`\\hat a = \\arg\\min_a E_\\theta(o, a)`. An energy can have several
valleys, so two modes stay two modes.

**Training: InfoNCE.** For each demonstrated pair :math:`(o, a)` draw :math:`N` counter-examples
:math:`\\tilde a_1, \\dots, \\tilde a_N` uniformly from the action bounds (the box :math:`[-1, 1]^D`
in normalised units) and treat the set as a classification problem: which one is real?

.. math::

    \\mathcal L_{\\text{InfoNCE}} = -\\log
    \\frac{e^{-E_\\theta(o, a)/\\tau}}{e^{-E_\\theta(o, a)/\\tau} + \\sum_{j=1}^N e^{-E_\\theta(o, \\tilde a_j)/\\tau}}

i.e. the cross-entropy of the logits :math:`-[E(o, a), E(o, \\tilde a_1), \\dots]/\\tau` with the
positive as the label (:func:`info_nce`). It estimates the maximum-likelihood gradient of
:math:`p_\\theta(a \\mid o) \\propto e^{-E_\\theta(o,a)/\\tau}` with the normalising integral replaced by
uniform samples, which is accurate only when the counter-examples cover the action space well:
few counter-examples, or many action dimensions, leave most of the space unseen.

**Inference: derivative-free optimisation** (:func:`dfo_minimize`). Draw :math:`M` samples
uniformly; repeat: weight them by :math:`\\mathrm{softmax}(-E/\\tau)`, resample with replacement,
add Gaussian noise of scale :math:`\\sigma`, clip to the bounds, shrink :math:`\\sigma \\leftarrow
\\kappa\\sigma`; return the lowest-energy sample. Optionally **Langevin dynamics**
(:func:`langevin_minimize`): :math:`a \\leftarrow a - \\lambda \\nabla_a E + \\sqrt{2\\lambda}\\,\\eta\\,\\varepsilon`.

**What the energy scores.** By default the energy reads the whole predicted window
:math:`a_{t-T_o+1}, \\dots, a_{t-T_o+T_p}` (``energy_actions="chunk"``), as chapter 7 builds it. With
``energy_actions="executed"`` it reads only the :math:`T_a` actions executed now,
:math:`a_t, \\dots, a_{t+T_a-1}`, as the Diffusion Policy paper's IBC baseline does on Push-T
(:math:`T_o = 2`, :math:`T_a = 1`: a 2-D action instead of a 4-D window whose first action is already
in the past). Fewer dimensions mean uniform counter-examples and DFO's samples cover the space more
densely.

Introduced in chapter 7.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dplearn import seeding
from dplearn.nets.mlp import mlp
from dplearn.policies.base import (
    MLPPolicyConfig,
    Policy,
    _check_choice,
    _check_float,
    _check_int,
    register_policy,
)
from dplearn.validate import positive_float

__all__ = ["IBCConfig", "IBCPolicy", "info_nce", "uniform_counter_examples", "dfo_step", "dfo_minimize",
           "langevin_minimize"]

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# the pieces, as plain functions
# ---------------------------------------------------------------------------------------------
def info_nce(energy_pos: torch.Tensor, energy_neg: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE loss: mean over the batch of :math:`-\\log \\mathrm{softmax}(-[E^+, E^-_1, \\dots, E^-_N]/\\tau)_0`.

    Shapes: ``energy_pos`` (B,), ``energy_neg`` (B, N) → scalar.

    Introduced in chapter 7.
    """
    if energy_pos.ndim != 1 or energy_neg.ndim != 2 or energy_neg.shape[0] != energy_pos.shape[0]:
        raise ValueError(f"energy_pos must be (B,) and energy_neg (B, N); got {tuple(energy_pos.shape)} "
                         f"and {tuple(energy_neg.shape)}")
    positive_float("temperature", temperature)
    logits = -torch.cat([energy_pos[:, None], energy_neg], dim=1) / temperature
    target = torch.zeros(energy_pos.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def uniform_counter_examples(batch: int, n: int, dim: int, low: float = -1.0, high: float = 1.0,
                             generator: torch.Generator | None = None,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` counter-examples per example, uniform in :math:`[\\text{low}, \\text{high}]^{\\text{dim}}`; (batch, n, dim).

    Introduced in chapter 7.
    """
    u = seeding.rand((batch, n, dim), generator, device="cpu" if device is None else device)
    return low + (high - low) * u


def dfo_step(energy_fn: EnergyFn, samples: torch.Tensor, noise_scale: float, temperature: float = 1.0,
             low: float = -1.0, high: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """One iteration of derivative-free optimisation.

    Weights :math:`w = \\mathrm{softmax}(-E(\\text{samples})/\\tau)` per row, resamples M samples
    with replacement in proportion to :math:`w`, adds :math:`\\mathcal N(0, \\sigma^2)` noise and clips
    to [low, high]. Shapes: ``samples`` (B, M, D), ``energy_fn`` (B, M, D) → (B, M); returns (B, M, D).

    Introduced in chapter 7.
    """
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (B, M, D), got {tuple(samples.shape)}")
    B, M, D = samples.shape
    weights = torch.softmax(-energy_fn(samples) / temperature, dim=-1)
    index = seeding.multinomial(weights, M, replacement=True, generator=generator)
    chosen = torch.gather(samples, 1, index[..., None].expand(B, M, D))
    noise = seeding.randn(chosen.shape, generator, device=chosen.device, dtype=chosen.dtype)
    return torch.clamp(chosen + noise_scale * noise, low, high)


def dfo_minimize(energy_fn: EnergyFn, batch: int, dim: int, n_samples: int = 1024, iterations: int = 3,
                 noise_scale: float = 0.33, shrink: float = 0.5, temperature: float = 1.0,
                 low: float = -1.0, high: float = 1.0, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """:math:`\\arg\\min_a E(a)` by derivative-free optimisation (IBC's inference); returns (batch, dim).

    Starts from ``n_samples`` uniform samples, does ``iterations`` :func:`dfo_step` s with noise
    ``noise_scale``·``shrink``:sup:`i`, and returns the lowest-energy sample of the last population.

    Introduced in chapter 7.
    """
    samples = uniform_counter_examples(batch, n_samples, dim, low, high, generator, device)
    sigma = noise_scale
    for _ in range(iterations):
        samples = dfo_step(energy_fn, samples, sigma, temperature, low, high, generator)
        sigma *= shrink
    best = energy_fn(samples).argmin(dim=-1)
    return samples[torch.arange(batch, device=samples.device), best]


def langevin_minimize(energy_fn: EnergyFn, init: torch.Tensor, steps: int = 50, step_size: float = 1e-2,
                      noise: float = 0.1, low: float = -1.0, high: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Langevin dynamics on :math:`E`: :math:`a \\leftarrow \\mathrm{clip}(a - \\lambda \\nabla_a E(a) +
    \\sqrt{2\\lambda}\\,\\eta\\,\\varepsilon)` for ``steps`` steps with :math:`\\lambda` = ``step_size``,
    :math:`\\eta` = ``noise``; the step size decays linearly to a tenth. Shapes: ``init`` (B, M, D) → (B, M, D).

    Introduced in chapter 7.
    """
    a = init.detach().clone()
    for i in range(steps):
        lam = step_size * (1.0 - 0.9 * i / max(1, steps - 1))
        with torch.enable_grad():
            a.requires_grad_(True)
            grad, = torch.autograd.grad(energy_fn(a).sum(), a)
        eps = seeding.randn(a.shape, generator, device=a.device, dtype=a.dtype)
        a = torch.clamp(a.detach() - lam * grad + (2 * lam) ** 0.5 * noise * eps, low, high)
    return a


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
@dataclass
class IBCConfig(MLPPolicyConfig):
    """:class:`~dplearn.policies.base.MLPPolicyConfig` plus

    ==================  ===========================================================================
    n_negatives         :math:`N`, uniform counter-examples per demonstrated action (>= 1)
    temperature         :math:`\\tau` of the InfoNCE softmax and of DFO's weights (> 0)
    inference           ``"dfo"`` or ``"langevin"`` (Langevin from ``dfo_samples`` uniform samples,
                        then the lowest-energy one)
    dfo_samples         :math:`M`, the population of DFO, or Langevin's starting samples (>= 1)
    dfo_iterations      resample-and-perturb rounds (>= 0)
    dfo_noise           initial noise scale :math:`\\sigma` in normalised units (>= 0)
    dfo_shrink          :math:`\\kappa`, the factor the noise shrinks by each round (in (0, 1])
    langevin_steps      steps of Langevin dynamics when ``inference="langevin"`` (>= 1)
    langevin_step_size  :math:`\\lambda` (> 0)
    langevin_noise      :math:`\\eta` (>= 0)
    energy_actions      ``"chunk"``: the energy reads the whole window of :math:`T_p` actions;
                        ``"executed"``: only the :math:`T_a` executed ones (chapter 7's Push-T recipe)
    ==================  ===========================================================================

    Introduced in chapter 7.
    """

    n_negatives: int = 256
    temperature: float = 1.0
    inference: str = "dfo"
    dfo_samples: int = 1024
    dfo_iterations: int = 3
    dfo_noise: float = 0.33
    dfo_shrink: float = 0.5
    langevin_steps: int = 50
    langevin_step_size: float = 1e-2
    langevin_noise: float = 0.1
    energy_actions: str = "chunk"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "n_negatives", 1)
        _check_float(self, "temperature", 0.0)
        _check_choice(self, "inference", ("dfo", "langevin"))
        _check_int(self, "dfo_samples", 1)
        _check_int(self, "dfo_iterations", 0)
        _check_float(self, "dfo_noise", 0.0, low_open=False)
        _check_float(self, "dfo_shrink", 0.0, 1.0)
        _check_int(self, "langevin_steps", 1)
        _check_float(self, "langevin_step_size", 0.0)
        _check_float(self, "langevin_noise", 0.0, low_open=False)
        _check_choice(self, "energy_actions", ("chunk", "executed"))


@register_policy
class IBCPolicy(Policy):
    """An energy MLP :math:`E_\\theta(o, a)` on the flattened history and actions; InfoNCE training, DFO
    (optionally Langevin) inference in the normalised action box :math:`[-1, 1]^{n \\cdot \\text{action\\_dim}}`,
    with :math:`n = T_p` (``energy_actions="chunk"``) or :math:`n = T_a` (``"executed"``).

    With ``"executed"``, :meth:`sample` returns a full chunk ``(B, T_p, action_dim)`` whose executed
    slots :math:`a_t, \\dots, a_{t+T_a-1}` hold the minimiser and whose other slots repeat the nearest
    executed action (they are never executed).

    Introduced in chapter 7.
    """

    name = "ibc"
    config_class = IBCConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c = self.config
        self.energy_steps = c.pred_horizon if c.energy_actions == "chunk" else c.action_horizon
        self.action_size = self.energy_steps * c.action_dim
        self.net = mlp(c.obs_horizon * c.obs_dim + self.action_size, c.hidden, c.n_layers, 1)

    def energy(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """:math:`E_\\theta(o, a)` for normalised ``obs`` (B, T_o, obs_dim) and M candidate flattened
        actions ``actions`` (B, M, n·action_dim), n = T_p or T_a (``energy_actions``) → (B, M)."""
        B, M, _ = actions.shape
        o = obs.flatten(1)[:, None, :].expand(B, M, -1)
        return self.net(torch.cat([o, actions], dim=-1)).squeeze(-1)

    def scored_actions(self, action: torch.Tensor) -> torch.Tensor:
        """The part of a normalised chunk (B, T_p, action_dim) that the energy reads, flattened:
        (B, T_p·action_dim), or the executed :math:`a_t..a_{t+T_a-1}` as (B, T_a·action_dim)."""
        c = self.config
        if c.energy_actions == "executed":
            start = c.obs_horizon - 1
            action = action[:, start:start + c.action_horizon]
        return action.flatten(1)

    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        c = self.config
        B = obs.shape[0]
        negatives = uniform_counter_examples(B, c.n_negatives, self.action_size, device=obs.device)
        candidates = torch.cat([self.scored_actions(action)[:, None, :], negatives], dim=1)
        energies = self.energy(obs, candidates)
        return info_nce(energies[:, 0], energies[:, 1:], c.temperature)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        B = obs.shape[0]

        def energy_fn(a: torch.Tensor) -> torch.Tensor:
            return self.energy(obs, a)

        if c.inference == "dfo":
            best = dfo_minimize(energy_fn, B, self.action_size, c.dfo_samples, c.dfo_iterations, c.dfo_noise,
                                c.dfo_shrink, c.temperature, generator=generator, device=obs.device)
        else:
            init = uniform_counter_examples(B, c.dfo_samples, self.action_size, generator=generator,
                                            device=obs.device)
            a = langevin_minimize(energy_fn, init, c.langevin_steps, c.langevin_step_size, c.langevin_noise,
                                  generator=generator)
            best = a[torch.arange(B, device=a.device), energy_fn(a).argmin(-1)]
        best = best.view(B, self.energy_steps, c.action_dim)
        if c.energy_actions == "chunk":
            return best
        slot = torch.arange(c.pred_horizon, device=best.device) - (c.obs_horizon - 1)
        return best[:, slot.clamp(0, c.action_horizon - 1)]
