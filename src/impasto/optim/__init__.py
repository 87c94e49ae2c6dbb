"""Optimisers and what happens around each step: L-BFGS variants, the injectable factory, the step hooks
(trust region, divergence guard, iterate average, tolerance stop) and the loss evaluator."""

from impasto.optim.evaluator import LossEvaluator
from impasto.optim.factory import Optimizer, OptimizerFactory, OptimizerSpec, make_optimizer
from impasto.optim.hooks import DivergenceGuard, IterateAverage, StepHooks, ToleranceStop, TrustRegion
from impasto.optim.lbfgs import CompactLBFGS, TwoLoopLBFGS

__all__ = [
    "CompactLBFGS", "DivergenceGuard", "IterateAverage", "LossEvaluator", "Optimizer", "OptimizerFactory",
    "OptimizerSpec", "StepHooks", "ToleranceStop", "TrustRegion", "TwoLoopLBFGS", "make_optimizer",
]
