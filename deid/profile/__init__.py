"""Profiles: YAML rules, validated and composed into what the engine applies."""

from deid.profile.loader import Problem, ProfileError, builtin_names, load_profiles
from deid.profile.model import Profile, Rule

__all__ = ["Problem", "Profile", "ProfileError", "Rule", "builtin_names", "load_profiles"]
