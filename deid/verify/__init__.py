"""Verification: does a de-identified set conform to its profile, leak nothing, and stay
consistent? Engine layer: never imports Beam (buckets are read through it lazily)."""

from deid.verify.consistency import Consistency
from deid.verify.findings import Finding, InstanceResult, Report
from deid.verify.pair import PairResult, Unverifiable, verify_pair

__all__ = ["Consistency", "Finding", "InstanceResult", "PairResult", "Report", "Unverifiable",
           "verify_pair"]
