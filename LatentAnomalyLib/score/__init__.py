"""Scoring: the scorer registry (:mod:`.registry`), latent and baseline scorers, the model-free intensity baseline,
post-processing of score maps, connected components and conformal p-values."""
