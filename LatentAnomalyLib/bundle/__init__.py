"""Model bundles: the format (:mod:`.format`: data files and a SHA256 manifest, load and save, where the default
model is found), the configuration stored in it, the loaded model and ``latent-anomaly info``."""
