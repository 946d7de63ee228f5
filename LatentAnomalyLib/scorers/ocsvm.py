"""One-class SVM (RBF kernel) per location, stored as support vectors and dual coefficients.

scikit-learn fits each location's model; only its arrays are kept (dual coefficients over the
location's reference vectors, the intercept and the kernel width), so a bundle never holds a
pickled estimator. The decision function is re-evaluated with numpy; the tests check it against
``OneClassSVM.decision_function``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.svm import OneClassSVM

from .location import LocationScorer, squared_distances


class OCSVMScorer(LocationScorer):
    """Negative SVM decision value: positive outside the healthy support, growing with distance."""

    name: ClassVar[str] = "ocsvm"

    def _fit_local(self, reference: np.ndarray) -> dict[str, np.ndarray]:
        nu = float(self.params.get("nu", 0.1))
        p, m, c = reference.shape
        alpha = np.zeros((p, m), dtype=np.float32)
        intercept = np.zeros(p, dtype=np.float32)
        gamma = np.zeros(p, dtype=np.float32)
        for i in range(p):
            x = reference[i].astype(np.float64)
            g = 1.0 / (c * max(float(x.var()), 1e-6))
            svm = OneClassSVM(kernel="rbf", nu=nu, gamma=g, tol=1e-4).fit(x)
            alpha[i, svm.support_] = svm.dual_coef_[0]
            intercept[i] = svm.intercept_[0]
            gamma[i] = g
        return {"reference": reference.astype(np.float16), "alpha": alpha, "intercept": intercept, "gamma": gamma}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        d2 = squared_distances(queries, self.arrays["reference"][chunk].astype(np.float32))
        kernel = np.exp(-self.arrays["gamma"][chunk][:, None, None] * d2)
        decision = np.einsum("pqm,pm->pq", kernel, self.arrays["alpha"][chunk]) + self.arrays["intercept"][chunk][:, None]
        return -decision
