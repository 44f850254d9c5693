"""Beam pipelines: command lines wired to the transforms in deid.beam."""
