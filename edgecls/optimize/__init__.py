"""Model optimization: magnitude pruning and validation of artifacts against the float model."""
