"""Receipt secrets drawn a batch at a time (engine.creating.new_secrets)."""

from __future__ import annotations

import re
from collections import Counter

from engine.creating import SECRET_ALPHABET, new_secrets, normalise_secret

SHAPE = re.compile(rf"^[{SECRET_ALPHABET}]{{5}}-[{SECRET_ALPHABET}]{{5}}-[{SECRET_ALPHABET}]{{5}}$")


def test_a_batch_of_secrets_has_the_receipt_shape_and_no_repeats() -> None:
    batch = new_secrets(2000)
    assert len(batch) == 2000
    assert all(SHAPE.match(s) for s in batch)
    assert len(set(batch)) == 2000
    assert all(normalise_secret(s.lower().replace("-", " ")) == s for s in batch[:50])


def test_every_symbol_is_drawn_about_equally_often() -> None:
    counts = Counter("".join(new_secrets(20_000)).replace("-", ""))
    assert set(counts) == set(SECRET_ALPHABET)  # no 0/O, 1/I/l, no lower case
    expected = 20_000 * 15 / len(SECRET_ALPHABET)  # about 9,677 each, spread about 1%
    # a plain byte % 31 would draw the first 8 symbols 12.5% more often than the others
    assert all(abs(n - expected) < 0.06 * expected for n in counts.values())


def test_no_secrets_asked_none_given() -> None:
    assert new_secrets(0) == []
