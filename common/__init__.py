"""Helpers shared by every tool: face alignment, record I/O, FLOPs counting."""
