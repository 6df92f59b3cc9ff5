"""The prose matcher of the experiment tests: words exact, each number within one unit of its last digit."""

from notebook_prose import quoted


def test_a_number_may_differ_by_one_unit_of_its_last_digit():
    prose = "The attack's gain tracks it: correlation 0.82 over the sweep, 23 features kept at 1x."
    assert quoted("correlation 0.82", prose)
    assert quoted("correlation 0.83", prose) and quoted("correlation 0.81", prose)
    assert not quoted("correlation 0.84", prose) and not quoted("correlation 0.80", prose)
    assert quoted("23 features kept at 1x", prose) and quoted("22 features kept at 1x", prose)
    assert quoted("24 features kept at 1x", prose) and not quoted("21 features kept at 1x", prose)


def test_a_small_number_such_as_a_label_must_match_exactly():
    prose = "without L1 (7, 24 and 23 at 1x, 2x and 4x); at $1 - S = 0.02$"
    assert quoted("without L1 (7, 24 and 22 at 1x, 2x and 4x)", prose)
    assert not quoted("without L1 (7, 24 and 23 at 2x, 2x and 4x)", prose)
    assert not quoted("without L1 (8, 24 and 23 at 1x, 2x and 4x)", prose)
    assert not quoted("at $1 - S = 0.03$", prose) and not quoted("at $2 - S = 0.02$", prose)


def test_words_and_the_number_of_decimals_must_match():
    prose = "peaks at **2.94** (at $1 - S = 0.02$), then falls to 0.034; 122 latents."
    assert quoted("peaks at **2.94** (at $1 - S = 0.02$)", prose)
    assert quoted("peaks at **2.95**  (at $1 - S =\n0.02$)", prose)  # whitespace is normalised
    assert not quoted("peaks at **2.9** (at $1 - S = 0.02$)", prose)  # fewer decimals
    assert not quoted("peaks at **2.940** (at $1 - S = 0.02$)", prose)  # more decimals
    assert not quoted("peaks near **2.94**", prose)
    assert quoted("falls to 0.035", prose) and not quoted("falls to 0.03", prose)
    assert not quoted("22 latents", prose) and not quoted("2 latents", prose)  # never the tail of a longer number
    assert not quoted("falls to 0.034 m", prose)
