"""MegaFace evaluation helpers: per-image feature files, feature extraction, noise-list cleaning."""
