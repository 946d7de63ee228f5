"""End to end through the CLI and the library: detect, batch, train, conformal detection, packaging, shared data."""
