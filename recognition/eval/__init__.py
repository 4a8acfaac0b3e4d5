"""Verification on LFW / CFP-FP / AgeDB-30 style .bin pair sets."""
