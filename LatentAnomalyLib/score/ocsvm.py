"""One-class SVM (RBF kernel) per location on whitened latents, stored as dual coefficients.

scikit-learn fits each location's model on the location's reference vectors; only its arrays are
kept (dual coefficients over those vectors, the intercept and the kernel width), so a bundle never
holds a pickled estimator. The decision function is re-evaluated with numpy; the tests check it
against ``OneClassSVM.decision_function``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .location import LocationScorer, squared_distances


class OCSVMScorer(LocationScorer):
    """Log-ratio of the SVM's threshold to its kernel sum: positive outside the healthy support."""

    name: ClassVar[str] = "ocsvm"

    def _fit_local(self) -> dict[str, np.ndarray]:
        from sklearn.svm import OneClassSVM  # fitting only (training); scoring is numpy, and importing it costs ~1 s

        nu = float(self.params.get("nu", 0.1))
        # Kernel width relative to scikit-learn's "scale" rule (1 / (channels * variance)).
        gamma_scale = float(self.params.get("gamma_scale", 1.0))
        reference = self.space.reference()
        p, m, c = reference.shape
        alpha = np.zeros((p, m), dtype=np.float32)
        intercept = np.zeros(p, dtype=np.float32)
        gamma = np.zeros(p, dtype=np.float32)
        for i in range(p):
            x = reference[i].astype(np.float64)
            g = gamma_scale / (c * max(float(x.var()), 1e-6))
            svm = OneClassSVM(kernel="rbf", nu=nu, gamma=g, tol=1e-4).fit(x)
            alpha[i, svm.support_] = svm.dual_coef_[0]
            intercept[i] = svm.intercept_[0]
            gamma[i] = g
        return {"alpha": alpha, "intercept": intercept, "gamma": gamma}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        """log(rho) - log(sum_i alpha_i K(x, sv_i)): 0 on the SVM's boundary, positive outside.

        A monotone transform of scikit-learn's decision function wherever the kernel sum is
        representable, computed with log-sum-exp so that far outliers keep growing scores
        (about gamma times the squared distance to the nearest support vector) instead of all
        saturating at the intercept.
        """
        d2 = squared_distances(queries, self.space.reference(chunk))
        alpha = self.arrays["alpha"][chunk]
        log_alpha = np.where(alpha > 0, np.log(np.maximum(alpha, 1e-30)), -np.inf)[:, None, :]
        exponent = log_alpha - self.arrays["gamma"][chunk][:, None, None] * d2
        top = exponent.max(axis=2, keepdims=True)
        log_sum = top[..., 0] + np.log(np.exp(exponent - top).sum(axis=2))
        rho = -self.arrays["intercept"][chunk][:, None]
        return np.log(np.maximum(rho, 1e-30)) - log_sum
