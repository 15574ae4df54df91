"""Alert fingerprints (fingerprint.py) equal Alertmanager's, value for value. Pure: no I/O.

Known answers come from prometheus/common's own tests (model/signature_test.go) and from an
alert Alertmanager returned on /api/v2/alerts (prometheus/alertmanager issue #2233).
"""

from __future__ import annotations

import re
from functools import reduce
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.alerts.fingerprint import label_fingerprint
from tests.support.alertmanager_samples import REAL_FINGERPRINT, REAL_LABELS

label_sets = st.dictionaries(st.text(), st.text(), max_size=8)


def fnv1a_64(data: bytes) -> int:
    """FNV-1a 64-bit written out from its definition, independently of the module."""
    return reduce(lambda h, byte: ((h ^ byte) * 0x100000001B3) % 2**64, data, 0xCBF29CE484222325)


def reference_fingerprint(labels: dict[str, str]) -> str:
    """Name, 0xff, value, 0xff for each label in name order, hashed in one go."""
    data = b"".join(
        name.encode("utf-8") + b"\xff" + labels[name].encode("utf-8") + b"\xff"
        for name in sorted(labels)
    )
    return format(fnv1a_64(data), "016x")


def test_the_reference_fnv1a_agrees_with_the_published_test_vectors() -> None:
    assert fnv1a_64(b"") == 0xCBF29CE484222325
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_a_real_alertmanager_alert_has_the_fingerprint_alertmanager_reported() -> None:
    assert label_fingerprint(REAL_LABELS) == REAL_FINGERPRINT


def test_prometheus_common_known_answer_for_two_labels() -> None:
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert label_fingerprint(labels) == format(5799056148416392346, "016x")


def test_prometheus_common_known_answers_for_one_two_and_three_labels() -> None:
    one = {"first-label": "first-label-value"}
    two = {**one, "second-label": "second-label-value"}
    three = {**two, "third-label": "third-label-value"}
    assert label_fingerprint(one) == format(5146282821936882169, "016x")
    assert label_fingerprint(two) == format(3195800080984914717, "016x")
    assert label_fingerprint(three) == format(13843036195897128121, "016x")


def test_the_empty_label_set_has_the_fnv_offset_basis_as_fingerprint() -> None:
    assert label_fingerprint({}) == "cbf29ce484222325"
    assert int(label_fingerprint({}), 16) == 14695981039346656037


def test_the_order_labels_are_given_in_does_not_matter() -> None:
    forward = {"alertname": "HighErrorRate", "job": "api", "severity": "page"}
    backward = {"severity": "page", "job": "api", "alertname": "HighErrorRate"}
    assert label_fingerprint(forward) == label_fingerprint(backward)


def test_every_name_and_every_value_changes_the_fingerprint() -> None:
    labels = {"alertname": "HighErrorRate", "job": "api", "severity": "page"}
    original = label_fingerprint(labels)
    for name, value in labels.items():
        renamed = {(name + "_x" if key == name else key): val for key, val in labels.items()}
        revalued = {**labels, name: value + "x"}
        assert label_fingerprint(renamed) != original
        assert label_fingerprint(revalued) != original


def test_the_separator_keeps_names_and_values_apart() -> None:
    assert label_fingerprint({"a": "bc"}) != label_fingerprint({"ab": "c"})


def test_the_separator_keeps_one_label_apart_from_the_next() -> None:
    assert label_fingerprint({"a": "b", "c": "d"}) != label_fingerprint({"a": "bc", "d": ""})


def test_an_empty_value_still_counts() -> None:
    assert label_fingerprint({"env": ""}) != label_fingerprint({})


def test_unicode_is_hashed_as_utf8_bytes() -> None:
    labels = {"team": "données", "summary": "Überlast 🔥"}
    assert label_fingerprint(labels) == reference_fingerprint(labels)
    latin1 = b"team\xffdonn\xe9es\xff"
    assert label_fingerprint({"team": "données"}) != format(fnv1a_64(latin1), "016x")


def test_leading_zeros_are_kept() -> None:
    labels = next(
        candidate
        for candidate in ({"n": str(i)} for i in range(1000))
        if reference_fingerprint(candidate).startswith("0")
    )
    fingerprint = label_fingerprint(labels)
    assert len(fingerprint) == 16
    assert fingerprint.startswith("0")


def test_any_mapping_is_accepted() -> None:
    labels = {"alertname": "Down", "job": "node"}
    assert label_fingerprint(MappingProxyType(labels)) == label_fingerprint(labels)


@given(label_sets)
def test_fingerprints_are_sixteen_lowercase_hex_digits(labels: dict[str, str]) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", label_fingerprint(labels))


@given(label_sets)
def test_fingerprints_match_the_reference_formulation(labels: dict[str, str]) -> None:
    assert label_fingerprint(labels) == reference_fingerprint(labels)
