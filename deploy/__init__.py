"""Deployment: embeddings from trained checkpoints (face_model) and model export."""
