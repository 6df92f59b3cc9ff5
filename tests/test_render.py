"""autograder.render: one verdict dict, rendered as HTML, plain text and rich (issue 12, item 4)."""

from __future__ import annotations

import io
import re

import pytest

from autograder.render import verdict_html, verdict_rich, verdict_text

LONG = (
    "every feature of an instance switched on together in 97% of rows: draw one uniform number per "
    "feature, not one per instance, and compare it with `feature_probability[i]` for that instance"
)


def _verdict(passed: bool = False) -> dict:
    props = [
        {"test": "test_shape_and_dtype", "points": 2.0, "max_points": 2.0, "passed": True, "message": ""},
        {"test": "test_features_independent", "points": 0.0 if not passed else 3.0, "max_points": 3.0,
         "passed": passed, "message": "" if passed else LONG},
        {"test": "test_a_density", "points": 0.0 if not passed else 3.0, "max_points": 3.0,
         "passed": passed, "message": "" if passed else LONG},
    ]
    pts = sum(p["points"] for p in props)
    return {"id": "01.generate_batch", "title": "Sparse features with per-instance densities", "points": pts,
            "max_points": 8.0, "properties": props, "passed": passed, "seconds": 0.1,
            "message": "all 3 checks passed" if passed else LONG}


def test_text_headline_order_and_word_wrapping():
    text = verdict_text(_verdict(), width=60)
    lines = text.splitlines()
    assert lines[0].startswith("[FAIL] 01.generate_batch")
    assert "2/8 points" in text.replace("\n    ", " ")
    # The properties come in the order given (not alphabetical: "a density" is last).
    order = [text.index("shape and dtype"), text.index("features independent"), text.index("a density")]
    assert order == sorted(order)
    assert all(len(line) <= 60 for line in lines[1:]) and len(lines[0]) <= 100
    # Wrapped at word boundaries: joining the continuation lines gives the message back word for word.
    words = " ".join(line.strip() for line in lines[3:]).split()
    assert " ".join(LONG.split()) in " ".join(words)
    assert "(the same reason as above)" in text  # a repeated message is said once
    assert "`feature_probability[i]`" in text


def test_text_pass():
    text = verdict_text(_verdict(passed=True))
    assert text.startswith("[PASS] 01.generate_batch") and "8/8 points" in text and "FAIL" not in text


def test_html_is_one_block_with_colours_code_and_order():
    out = verdict_html(_verdict())
    assert out.startswith('<div class="sc-verdict"') and out.count('class="sc-verdict"') == 1
    assert "[FAIL]" in out and "2/8 points" in out
    assert "<code>feature_probability[i]</code>" in out and "`" not in out
    assert out.count("sc-property sc-pass") == 1 and out.count("sc-property sc-fail") == 2
    assert out.index("shape and dtype") < out.index("features independent") < out.index("a density")
    assert "white-space:normal" in out and "word-break:normal" in out  # the browser wraps between words
    assert "#cf222e" in out and "#1a7f37" in out  # FAIL red, ok green (and the header amber: partial)


def test_html_escapes_learner_text():
    v = _verdict()
    v["properties"][1]["message"] = "got <script>alert(1)</script> & `x < y`"
    out = verdict_html(v)
    assert "<script>" not in out and "&lt;script&gt;" in out and "<code>x &lt; y</code>" in out


def test_rich_renders_same_content():
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=70, color_system=None).print(verdict_rich(_verdict()))
    text = buf.getvalue()
    assert text.startswith("[FAIL] 01.generate_batch") and "2/8 points" in text
    assert "feature_probability[i]" in text and "`" not in text
    assert all(len(line) <= 70 for line in text.splitlines())
    flat = " ".join(text.split())
    assert re.search(r"draw one uniform number per feature, not one per instance", flat)


@pytest.mark.parametrize("bad", [None, [], {"id": "x"}])
def test_bad_input_names_the_argument(bad):
    with pytest.raises((TypeError, ValueError), match="v must"):
        verdict_text(bad)


def test_from_a_real_verdict():
    """The renderers accept exactly what Verdict.to_json() gives today."""
    from autograder.runner import PropertyResult, Verdict

    v = Verdict("01.x", "A title", 1.0, 3.0, [PropertyResult("test_b", 1.0, 1.0, True, ""),
                                              PropertyResult("test_a", 0.0, 2.0, False, "use `torch.rand`")])
    d = v.to_json()
    assert verdict_text(d).splitlines()[0] == "[FAIL] 01.x A title: 1/3 points"
    assert "<code>torch.rand</code>" in verdict_html(d)
