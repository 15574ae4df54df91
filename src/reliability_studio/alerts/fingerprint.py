"""Alert fingerprints identical to Alertmanager's. Pure, no I/O.

Alertmanager identifies an alert by the fingerprint of its label set (prometheus/common
`model.LabelSet.Fingerprint()`, printed with `%016x`). Computing the very same value lets us
correlate what we store with what Alertmanager shows, sends in webhooks and accepts in its
API, without asking it.

The algorithm (prometheus/common `model/signature.go`, `labelSetToFingerprint`): FNV-1a
64-bit over the labels sorted by name, each contributing its name, the separator byte 0xff,
its value and 0xff again. The separator cannot occur in UTF-8, so {"a": "bc"} and
{"ab": "c"} hash differently. An empty label set hashes to the FNV offset basis.
"""

from __future__ import annotations

from collections.abc import Mapping

_FNV64_OFFSET_BASIS = 14695981039346656037
_FNV64_PRIME = 1099511628211
_UINT64_MASK = 0xFFFF_FFFF_FFFF_FFFF
# A byte that never occurs in UTF-8: it keeps names and values from running together.
_SEPARATOR = b"\xff"


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The Alertmanager fingerprint of `labels`: 16 lowercase hex digits.

    Names are sorted by their UTF-8 bytes, as Go sorts strings; for valid text this is the
    same order as Python's code-point order.
    """
    digest = _FNV64_OFFSET_BASIS
    encoded = sorted((name.encode(), value.encode()) for name, value in labels.items())
    for name, value in encoded:
        for byte in name + _SEPARATOR + value + _SEPARATOR:
            digest = ((digest ^ byte) * _FNV64_PRIME) & _UINT64_MASK
    return f"{digest:016x}"
