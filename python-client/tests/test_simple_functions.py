"""Recognised simple lambdas (ember.simple_functions) compute what the lambda does."""

import doctest
import operator
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import simple_functions  # noqa: E402
from ember.simple_functions import as_callable, binary_operator, map_function  # noqa: E402

SEP = ","


def _nested():
    # Written inside a function (CO_NESTED): recognised all the same.
    return lambda w: (w, 1), lambda line: line.split(" ")


def test_doctests():
    assert doctest.testmod(simple_functions).failed == 0


@pytest.mark.parametrize("f, records", [
    (lambda w: (w, 1), ["a", "b", 3]),
    (lambda w: (w, None), ["a"]),                        # no LOAD_CONST 1 slot: not recognised
    (lambda w: (w, (1, 2)), ["x", "y"]),
    (lambda line: line.split(" "), ["a b", " c  d ", ""]),
    (lambda line: line.split(), ["a b\tc", ""]),
    (lambda line: line.split(",", 1), ["a,b,c"]),
    (lambda s: s.lower(), ["AbC"]),
    (lambda kv: kv[0], [(1, 2), "xy", [5]]),
    (lambda kv: kv[-1], [(1, 2), "xy"]),
    (lambda kv: kv["k"], [{"k": 3}]),
    (lambda x: x.split(SEP), ["a,b"]),                   # reads a global: not a template
    (lambda x: x + 1, [1, 2]),                           # not a template
    (lambda x, y=2: (x, y), [1]),                        # a default: not a template
])
def test_recognised_functions_compute_what_the_lambda_does(f, records):
    fast = map_function(f)
    expected = [f(r) for r in records]
    if fast is not None:
        assert list(fast(iter(records))) == expected
    c = as_callable(f)
    if c is not None:
        assert [c(r) for r in records] == expected


def test_which_lambdas_are_recognised():
    pair, split = _nested()
    assert map_function(pair) is not None and as_callable(split) is not None
    assert as_callable(lambda x: x.split(SEP)) is None
    assert map_function(lambda x: x + 1) is None
    assert map_function(lambda w: (w, None)) is None
    value = 3
    assert map_function(lambda w: (w, value)) is None    # a closure: not a template
    assert as_callable(len) is None and map_function(str.upper) is None


@pytest.mark.parametrize("f, op", [(lambda a, b: a + b, operator.add),
                                   (lambda x, y: x * y, operator.mul),
                                   (lambda a, b: a - b, operator.sub),
                                   (lambda a, b: a | b, operator.or_),
                                   (lambda a, b: a & b, operator.and_)])
def test_binary_lambdas_become_operators(f, op):
    assert binary_operator(f) is op
    assert op(6, 3) == f(6, 3) and op([1], [2]) == f([1], [2]) if op is operator.add else True


def test_other_binary_functions_stay():
    f = lambda a, b: max(a, b)  # noqa: E731
    assert binary_operator(f) is f
    assert binary_operator(operator.add) is operator.add


def test_exceptions_are_the_lambdas():
    split = as_callable(lambda line: line.split(" "))
    with pytest.raises(AttributeError, match="'int' object has no attribute 'split'"):
        split(3)
    first = as_callable(lambda kv: kv[0])
    with pytest.raises(TypeError, match="not subscriptable"):
        first(None)


def test_constants_come_from_the_instructions():
    # Not from fixed positions in co_consts (Python 3.14 no longer puts None first).
    assert repr(as_callable(lambda d: d.get("k", "dflt"))) == "operator.methodcaller('get', 'k', 'dflt')"
    assert repr(as_callable(lambda x: x.pop(0))) == "operator.methodcaller('pop', 0)"
    assert list(map_function(lambda w: (w, 0))(iter("ab"))) == [("a", 0), ("b", 0)]
    assert simple_functions._works()


def test_tuple_of_split_is_recognised_only_as_the_template():
    call = simple_functions.tuple_split_call
    splitter, sep = call(lambda line: tuple(line.split()))
    assert repr(splitter) == "operator.methodcaller('split')" and sep is None
    splitter, sep = call(lambda line: tuple(line.split(",")))
    assert repr(splitter) == "operator.methodcaller('split', ',')" and sep == ","
    assert call(lambda line: tuple(line.split(",", 1))) is None
    assert call(lambda line: tuple(line.rsplit())) is None
    assert call(lambda line: list(line.split())) is None
    assert call(lambda line: tuple(line.split(sep))) is None          # a global: not constant
    assert call(lambda line, t=tuple: t(line.split())) is None


def test_tuple_of_split_is_not_recognised_where_tuple_is_another_name():
    scope = {"tuple": list}
    exec("f = lambda line: tuple(line.split())", scope)
    assert simple_functions.tuple_split_call(scope["f"]) is None
    scope = {"__builtins__": {"tuple": list}}
    exec("f = lambda line: tuple(line.split())", scope)
    assert simple_functions.tuple_split_call(scope["f"]) is None


def test_a_remembered_shape_is_the_shape_of_that_very_code_object():
    from ember import simple_functions as sf
    made = [eval(f"lambda x: x.m({i})") for i in range(3)] + [lambda x: (x, 1), lambda a, b: a + b]
    for _ in range(2):
        for f in made:
            assert sf._shape(f.__code__) == sf._shape_of(f.__code__)
    # A code object at the id of a forgotten one is examined afresh.
    for _ in range(200):
        f = eval("lambda x: x.split()")
        assert sf._shape(f.__code__) == sf._shape_of(f.__code__)
        del f
    saved = dict(sf._SHAPES)
    try:
        sf._SHAPES.update({-i: (None, ()) for i in range(1, 1100)})
        fresh = eval("lambda x: x[2]")
        assert sf._shape(fresh.__code__) == sf._shape_of(fresh.__code__)
        assert len(sf._SHAPES) == 1
    finally:
        sf._SHAPES.clear()
        sf._SHAPES.update(saved)
