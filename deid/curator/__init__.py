"""Curator tools: list, show and lint profiles; explain one instance; diff two instances.

Everything here reads profiles and files and writes nothing, so it can be run on a curator's
machine against real data; original values are masked unless asked for.
"""
