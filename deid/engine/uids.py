"""Keyed UID replacement: the same UID maps to the same new UID in every process and run."""

from __future__ import annotations

import re

from pydicom.uid import UID_dictionary

from deid.keys import SecretKey

UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def is_valid_uid(uid: str) -> bool:
    """PS3.5 9.1: components of digits without leading zeros, separated by dots, 64 characters
    at most. Only such a UID may name an output file: it holds no `/`, `\\`, `..` or NUL."""
    return len(uid) <= 64 and UID_RE.fullmatch(uid) is not None


def is_well_known(uid: str) -> bool:
    """A UID of the PS3.6 Annex A registry (SOP classes, transfer syntaxes, coding schemes,
    well-known frames of reference...; pydicom's UID dictionary): never replaced. A UID that
    merely starts with the DICOM root (1.2.840.10008) is not: instance, series and study UIDs
    minted under it identify like any other."""
    return uid in UID_dictionary


def hash_uid(key: SecretKey, uid: str) -> str:
    """'2.25.' and the decimal of 128 bits of HMAC-SHA256(key, uid) (PS3.5 B.2 UUID form)."""
    digest = key.digest(b"uid", uid.encode("ascii", "backslashreplace"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def replace_uid(key: SecretKey, uid: str) -> str:
    """The replacement of one UID value; well-known UIDs and empty values are kept."""
    uid = uid.strip("\0 ")
    if not uid or is_well_known(uid):
        return uid
    return hash_uid(key, uid)
