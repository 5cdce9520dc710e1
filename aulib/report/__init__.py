"""Figures and tables of the paper, drawn from a workspace's own files."""
