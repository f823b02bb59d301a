"""The calculation trace syntax and its evaluator: values, refusals, limits, fuzzing."""

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanta.calculator import (
    ERROR_MARKER,
    MAX_EXPRESSION_CHARS,
    CalculationError,
    annotate,
    calculations,
    evaluate,
    format_value,
    has_traces,
    open_expression,
    result_text,
    trace_problems,
)
from quanta_physics.answers import extract_final_answer


@pytest.mark.parametrize(("expression", "value"), [
    ("8 + 1.6*4", 14.4),
    ("38.3**2*sin(radians(60))/9.81", 38.3**2 * math.sin(math.radians(60)) / 9.81),
    ("6.626e-34*3.00e8/(500e-9)/1.602e-19", 6.626e-34 * 3.00e8 / 500e-9 / 1.602e-19),
    ("2*pi*sqrt(1.2/9.8)", 2 * math.pi * math.sqrt(1.2 / 9.8)),
    ("-(3 - 5)**2", -4.0),
    ("degrees(asin(sin(radians(40))/1.33))", 28.91),
    ("log10(1000) + exp(0) + e - e", 4.0),
    ("2**10", 1024.0),
    ("7/2", 3.5),
])
def test_evaluates_arithmetic(expression, value):
    assert evaluate(expression) == pytest.approx(value, rel=1e-3)


@pytest.mark.parametrize(("expression", "reason"), [
    ("__import__('os').system('id')", "may call only"),
    ("os.system", "may use only"),
    ("x + 1", "names 'x'"),
    ("(1).real", "may use only"),
    ("'a' * 3", "only numbers"),
    ("[1, 2]", "may use only"),
    ("1 if 1 else 2", "may use only"),
    ("1 < 2", "may use only"),
    ("lambda: 1", "may use only"),
    ("sin(x=1)", "keyword"),
    ("True + 1", "only numbers"),
    ("1 / 0", "division by zero"),
    ("10 ** 10 ** 10", "exponent"),
    ("9 ** 999", "too large"),
    ("sqrt(-1)", "failed"),
    ("1 +", "does not parse"),
    ("1" * (MAX_EXPRESSION_CHARS + 1), "longer than"),
    ("+".join(["1"] * 100), "parts"),
    ("1j * 2", "only numbers"),
    ("1 // 2", "may use only"),
    ("1 % 2", "may use only"),
])
def test_refuses(expression, reason):
    with pytest.raises(CalculationError, match=reason):
        evaluate(expression)


def test_a_refused_calculation_writes_the_error_marker():
    assert result_text("1/0") == ERROR_MARKER
    assert result_text("2*3") == "6"


@pytest.mark.parametrize(("value", "text"), [
    (14.4, "14.4"), (0, "0"), (123456.7, "123457"), (0.0022361, "0.002236"),
    (1.602e-19, "1.602e-19"), (3e8, "3e8"), (-9.81, "-9.81"), (2.0, "2"), (1e6, "1e6"),
    (99999.99, "100000"), (0.00012346, "0.0001235"),
])
def test_values_are_written_to_four_significant_figures(value, text):
    assert format_value(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30))
def test_the_answer_checker_reads_every_written_value_back(value):
    written = format_value(value)
    parsed = extract_final_answer(f"Final answer: {written} m")
    assert parsed is not None
    assert parsed[0] == pytest.approx(value, rel=1e-3, abs=1e-300) or abs(value) < 1e-300


def test_traces_are_found_checked_and_reported():
    text, value = annotate("8 + 1.6*4")
    assert text == "<<8 + 1.6*4>>14.4" and value == pytest.approx(14.4)
    answer = f"Use v = u + at.\nv = {text} m/s.\nFinal answer: 14.4 m/s"
    assert has_traces(answer)
    assert [c.expression for c in calculations(answer)] == ["8 + 1.6*4"]
    assert trace_problems(answer) == []
    assert "server inserts '14.4'" in trace_problems("v = <<8 + 1.6*4>>24 m/s")[0]
    assert "division by zero" in trace_problems("<<1/0>>3")[0]
    assert "never closed" in trace_problems("v = <<8 + 1.6*4>>14.4 then <<2*")[0]
    assert not has_traces("no calculation here << nor here")
    # Text that is not arithmetic between << and >> is not a calculation.
    assert not has_traces('std::cout << "x" >> y; cat <<EOF >> file')
    assert trace_problems('std::cout << "x" >> y; <<') == []


def test_open_expression_is_the_unclosed_tail():
    assert open_expression("v = <<8 + 1.6*4") == "8 + 1.6*4"
    assert open_expression("v = <<8>>8 and <<2*") == "2*"
    assert open_expression("v = <<8>>8") is None
    assert open_expression("plain") is None


_ATOMS = st.one_of(st.integers(-10**6, 10**6).map(str),
                   st.floats(-1e6, 1e6, allow_nan=False).map(repr),
                   st.sampled_from(["pi", "e", "x", "__import__", "sin(1)", "()", "'s'",
                                    "os.name", "[0]", "9**9**9", "1e308*10"]))
_EXPRESSIONS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "<", "and",
                                          ".", ","]), inner).map("".join),
        inner.map(lambda x: f"({x})"),
        st.tuples(st.sampled_from(["sin", "sqrt", "log", "exp", "eval", "open", "max",
                                   "getattr"]), inner).map(lambda p: f"{p[0]}({p[1]})")),
    max_leaves=12)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_EXPRESSIONS, st.text(max_size=80)))
def test_fuzz_every_input_gives_a_finite_float_or_a_calculation_error(expression):
    started = time.perf_counter()
    try:
        value = evaluate(expression)
    except CalculationError:
        pass
    else:
        assert isinstance(value, float) and math.isfinite(value)
    assert time.perf_counter() - started < 0.5
