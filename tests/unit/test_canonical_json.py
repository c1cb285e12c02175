"""The flat spelling of canonical JSON (an import's create rows and contact commitments) is
character for character what ``canonical_json`` writes: the hashes that cover it depend on it."""

from __future__ import annotations

import random

from engine import personal_data
from engine.audit import canonical_flat_json, canonical_json

AWKWARD = (
    "",
    "plain",
    '"quoted" and \\ backslash',
    "tab\tnew\nline\rcarriage",
    "\x00\x01\x1f\x7f control",
    "派出所出警太慢，晚上打110没人管",
    "emoji 🚓 and \u2028 line separator \u2029",
    "\ufeffbom",
    "</script>&<>'",
)


def test_flat_mappings_of_strings_and_none_are_spelt_as_canonical_json() -> None:
    rng = random.Random(15)
    keys = ("text", "kind", "priority", "area", "source", "received_at", "contact", "ä", "A")
    for _ in range(2000):
        data = {
            key: rng.choice((None, *AWKWARD)) for key in rng.sample(keys, rng.randint(0, len(keys)))
        }
        assert canonical_flat_json(data) == canonical_json(data)


def test_other_values_fall_back_to_canonical_json() -> None:
    for data in ({"n": 1}, {"f": 1.5}, {"b": True}, {"l": ["a"]}, {"d": {"x": None}}, {}):
        assert canonical_flat_json(data) == canonical_json(data)


def test_the_contact_commitment_covers_the_canonical_contact() -> None:
    raw = personal_data._canonical_contact('Wang "Li"', None, "1 Market St\n")
    expected = canonical_json({"address": "1 Market St\n", "contact": None, "name": 'Wang "Li"'})
    assert raw == expected.encode("utf-8")


def test_salts_are_fresh_and_thirty_two_hex_digits() -> None:
    salts = personal_data.new_salts(500)
    assert len(salts) == len(set(salts)) == 500
    assert all(len(s) == 32 and int(s, 16) >= 0 for s in salts)
