"""Mahalanobis regulariser that keeps the learned token vectors near their cross-initialised values.

Facts taken from the authors' released training script (Whslee/ID-EA, train_arcross_adapter_kv.py):
Sigma = cov(initial vectors as K samples of D features, unbiased, i.e. divided by K - 1) + 2e-5 I;
the distance is NOT squared: sqrt(max(d^T Sigma^-1 d, 1e-8)) per token, then the mean over the K
tokens, times the weight (8e-4). The floor keeps the square root differentiable at d = 0.

Sigma is D x D but has rank K - 1 plus eps*I, so its inverse is exact in closed form from a K x K
eigen-problem, computed once here (the released code ran a D x D pinv every step):
  Sigma^-1 = Q diag(1 / (lambda + eps)) Q^T + (I - Q Q^T) / eps,
with Q an orthonormal basis of the centred initial vectors' span and lambda their covariance spectrum.

Note: in float32, torch.linalg.pinv's default cutoff (D * machine-eps * largest singular value) drops
every eps-only direction, so the released code in practice penalised only movement inside that span.
`penalise_off_span=False` reproduces that; the default is the formula as written (true inverse).
"""
from __future__ import annotations

import math

import torch

DISTANCE_FLOOR = 1e-8  # floor under d^T Sigma^-1 d before the square root, as in the released code


class MahalanobisRegulariser:
    """weight * mean_k sqrt(max((v_k - v0_k)^T Sigma^-1 (v_k - v0_k), 1e-8)); Sigma fixed at creation."""

    def __init__(self, initial_vectors: torch.Tensor, eps: float = 2e-5, weight: float = 8e-4,
                 penalise_off_span: bool = True):
        if initial_vectors.dim() != 2:
            raise ValueError(f"initial vectors must be [K, D], got {list(initial_vectors.shape)}")
        if not eps > 0:
            raise ValueError(f"eps must be positive so Sigma is invertible, got {eps}")
        initial = initial_vectors.detach().to(torch.float64)
        if not torch.isfinite(initial).all():
            raise ValueError("initial vectors contain inf or nan")
        self.initial = initial
        self.eps = float(eps)
        self.weight = float(weight)
        self.penalise_off_span = penalise_off_span
        self.basis, self.inverse_span_variance = self._span_spectrum(initial, self.eps)

    @staticmethod
    def _span_spectrum(initial: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Orthonormal basis Q [D, r] of the covariance's range and 1/(lambda + eps) for each column.
        With a single vector the covariance is taken as zero (Sigma = eps I)."""
        count, dim = initial.shape
        if count < 2:
            return initial.new_zeros(dim, 0), initial.new_zeros(0)
        scaled = (initial - initial.mean(dim=0)) / math.sqrt(count - 1)  # Sigma - eps I = scaled^T scaled
        gram = scaled @ scaled.T  # [K, K], same non-zero spectrum as the D x D covariance
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        tolerance = eigenvalues.max().clamp(min=0.0) * count * torch.finfo(torch.float64).eps
        keep = eigenvalues > tolerance
        eigenvalues, eigenvectors = eigenvalues[keep], eigenvectors[:, keep]
        basis = scaled.T @ eigenvectors / eigenvalues.sqrt()  # [D, r], orthonormal columns
        return basis, 1.0 / (eigenvalues + eps)

    def squared_distances(self, vectors: torch.Tensor) -> torch.Tensor:
        """d_k^T Sigma^-1 d_k for each token k (float64, differentiable w.r.t. vectors)."""
        if vectors.shape != self.initial.shape:
            raise ValueError(f"vectors must have the initial vectors' shape {list(self.initial.shape)}, "
                             f"got {list(vectors.shape)}")
        basis = self.basis.to(vectors.device)
        offset = vectors.to(torch.float64) - self.initial.to(vectors.device)
        along_span = offset @ basis  # [K, r]
        squared = (along_span.square() * self.inverse_span_variance.to(vectors.device)).sum(dim=-1)
        if self.penalise_off_span:
            off_span = offset - along_span @ basis.T
            squared = squared + off_span.square().sum(dim=-1) / self.eps
        return squared

    def __call__(self, vectors: torch.Tensor) -> torch.Tensor:
        """Scalar loss in the dtype of `vectors`."""
        distances = self.squared_distances(vectors).clamp(min=DISTANCE_FLOOR).sqrt()
        return (self.weight * distances.mean()).to(vectors.dtype)
