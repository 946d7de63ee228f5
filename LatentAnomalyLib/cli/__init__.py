"""The ``latent-anomaly`` command: one module per subcommand (argument parsing only, typed options handed to the
library) and :mod:`.main`, which builds the parser and reports errors. ``python -m LatentAnomalyLib.cli`` runs it too.
:mod:`.calibrate` holds the hand-run calibration steps (``python -m LatentAnomalyLib.cli.calibrate``)."""
