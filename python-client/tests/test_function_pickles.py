"""ember.function_pickles: a remembered pickle is always the bytes cloudpickle
gives now, whatever changed since; functions that may change in place are
never remembered."""

import os
import sys

import cloudpickle
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import function_pickles  # noqa: E402
from ember.serializers import PICKLE_PROTOCOL  # noqa: E402

pytestmark = pytest.mark.skipif(not function_pickles._ENABLED,
                                reason="no pickle cache for this cloudpickle")

GLOBAL_LIST = [1, 2]


class Counting:
    """cloudpickle.dumps, counting the calls (a call is a cache miss)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, func):
        self.calls += 1
        return cloudpickle.dumps(func, PICKLE_PROTOCOL)


def check(func, pickle):
    got = function_pickles.dumps(func, pickle)
    assert got == cloudpickle.dumps(func, PICKLE_PROTOCOL)
    return got


def wrap(f):
    """Like RDD.map's closure: a new function around the same f each time."""
    def func(_, iterator):
        return map(f, iterator)
    return func


def test_a_new_wrapper_of_the_same_lambda_is_pickled_once():
    function_pickles._cache.clear()
    pickle = Counting()
    tiny = lambda x: x  # noqa: E731
    first = check(wrap(tiny), pickle)
    for _ in range(3):
        assert check(wrap(tiny), pickle) == first
    assert pickle.calls == 1
    check(wrap(lambda x: x + 1), pickle)     # another function: pickled
    assert pickle.calls == 2


def test_changed_attributes_cells_and_annotations_are_pickled_anew():
    function_pickles._cache.clear()
    pickle = Counting()
    factor = 2

    def scale(x):
        return x * factor
    check(scale, pickle)
    factor = 3                                # the cell holds another int now
    assert cloudpickle.loads(check(scale, pickle))(1) == 3
    scale.__name__ = "renamed"
    check(scale, pickle)
    scale.__doc__ = "documented"
    check(scale, pickle)
    scale.__annotations__["x"] = "int"
    check(scale, pickle)
    scale.__annotations__["x"] = "float"
    check(scale, pickle)
    assert pickle.calls == 6
    check(scale, pickle)                      # nothing changed since: remembered
    assert pickle.calls == 6


def test_functions_that_may_change_in_place_are_never_remembered():
    function_pickles._cache.clear()
    pickle = Counting()
    uses_global = lambda x: GLOBAL_LIST  # noqa: E731
    items = [1]
    uses_list = lambda x: items  # noqa: E731
    with_default = lambda x, y=[]: y  # noqa: E731
    with_attribute = lambda x: x  # noqa: E731
    with_attribute.note = "kept"
    for func in (uses_global, uses_list, with_default, with_attribute, wrap(uses_list), len,
                 function_pickles.dumps):
        before = check(func, pickle)
        GLOBAL_LIST.append(3)
        items.append(2)
        with_default.__defaults__[0].append(1)
        with_attribute.note += "!"
        assert check(func, pickle) != before or func in (len, function_pickles.dumps)
    assert pickle.calls == 14 and not function_pickles._cache


def test_identity_not_equality_decides():
    """Equal strings that are distinct objects pickle differently from one
    object met twice (pickle's memo): the cache must tell them apart."""
    function_pickles._cache.clear()
    pickle = Counting()
    a = "".join(["na", "me"])
    b = "".join(["na", "me"])

    def make(x, y):
        def both():
            return x, y
        return both
    shared, distinct = make(a, a), make(a, b)
    assert check(shared, pickle) != check(distinct, pickle)
    assert pickle.calls == 2


def module_level(x):
    return x


def test_by_reference_or_by_value_as_cloudpickle_decides_it_whatever_the_qualified_name():
    """The check skips cloudpickle's lookup for names through <locals> (never
    found by reference); a name that only contains the text still gets it."""
    function_pickles._cache.clear()
    pickle = Counting()
    names = ["module_level", "x<locals>y", "wrap.<locals>.module_level"]
    for name in names:
        module_level.__qualname__ = name
        try:
            for _ in range(2):
                got = check(module_level, pickle)
                by_reference = cloudpickle.cloudpickle._should_pickle_by_reference(module_level)
                assert (b"_make_function" not in got) == by_reference, name
        finally:
            module_level.__qualname__ = "module_level"
    wrapped = wrap(lambda x: x)
    assert "<locals>" in wrapped.__qualname__.split(".")
    assert not cloudpickle.cloudpickle._should_pickle_by_reference(wrapped)
    check(wrapped, pickle)
    calls = pickle.calls
    check(wrapped, pickle)
    assert pickle.calls == calls                 # remembered


def test_base64_text_is_kept_only_for_remembered_pickles():
    import base64
    function_pickles._cache.clear()
    tiny = lambda x: x  # noqa: E731
    data = check(wrap(tiny), Counting())
    assert check(wrap(tiny), Counting()) is data         # remembered: the same bytes
    text = function_pickles.base64_text(data)
    assert text == base64.b64encode(data).decode("ascii")
    assert function_pickles.base64_text(data) is text
    other = data[:1] + data[1:]                          # equal, but not a remembered object
    assert other is not data
    assert function_pickles.base64_text(other) == text
    assert id(other) not in function_pickles._texts


def reference_inputs(func, out, depth=0):
    """_inputs as it was before its checks ran as set operations in C: the
    same verdict and the same inputs, in the same order, for every function."""
    import types
    from cloudpickle.cloudpickle import _should_pickle_by_reference
    atoms = function_pickles._ATOMS
    missing = function_pickles._MISSING
    if type(func) is not types.FunctionType or depth > function_pickles._MAX_DEPTH:
        return False
    if func.__defaults__ is not None or func.__kwdefaults__ is not None or func.__dict__:
        return False
    doc = func.__doc__
    if type(doc) not in atoms:
        return False
    if "<locals>" not in func.__qualname__.split(".") and _should_pickle_by_reference(func):
        return False
    code, f_globals = func.__code__, func.__globals__
    out += (code, func.__name__, func.__qualname__, func.__module__, doc, f_globals)
    for key in function_pickles._BASE_GLOBALS:
        value = f_globals.get(key, missing)
        if value is not missing and type(value) not in atoms:
            return False
        out.append(value)
    for name in function_pickles._code_globals(code):
        if name in f_globals:
            return False
    annotations = func.__annotations__
    out.append(len(annotations))
    if annotations:
        for key, value in annotations.items():
            if type(key) is not str or type(value) is not str:
                return False
            out += (key, value)
    closure = func.__closure__
    if closure is None:
        out.append(None)
        return True
    out.append(len(closure))
    for cell in closure:
        try:
            value = cell.cell_contents
        except ValueError:
            return False
        out.append(value)
        if type(value) not in atoms and not reference_inputs(value, out, depth + 1):
            return False
    return True


def _functions_to_examine():
    """Functions of every shape _inputs tells apart."""
    import types
    found = []
    tiny = lambda x: x  # noqa: E731
    found += [tiny, wrap(tiny), wrap(wrap(tiny)), module_level, wrap(module_level)]

    def annotated(x: int) -> "str":
        return x
    found.append(annotated)                        # int: not a str annotation
    def str_annotated(x: "int") -> "str":  # noqa: E306
        return x
    found += [str_annotated, wrap(str_annotated)]
    uses_global = lambda x: GLOBAL_LIST  # noqa: E731
    found += [uses_global, wrap(uses_global)]
    found.append(lambda x, y=1: x)                 # defaults
    with_dict = lambda x: x  # noqa: E731
    with_dict.attr = 1
    found.append(with_dict)
    with_doc = lambda x: x  # noqa: E731
    with_doc.__doc__ = ["not an atom"]
    found.append(with_doc)
    captured = [1]
    found.append(lambda x: captured)               # a mutable cell
    number, text = 3, "s"
    found.append(lambda x: (number, text, x))      # atom cells
    for base in ({"__name__": "m"}, {"__name__": "m", "__package__": None, "__file__": "/f.py"},
                 {"__name__": "m", "__path__": ["/p"]}, {"__name__": "m", "__file__": 3},
                 {"__name__": "m", "missing": 1}, {}):
        space = dict(base)
        exec("def f(x):\n    return missing if x else x\n", space)
        found += [space["f"], wrap(space["f"])]
    found.append(types.FunctionType((lambda: 0).__code__, {"__name__": "m"}))
    deep = tiny
    for _ in range(function_pickles._MAX_DEPTH + 2):
        deep = wrap(deep)
    found.append(deep)
    found += [len, 3, None]
    return found


def test_inputs_agree_with_the_python_loops_they_replaced():
    for func in _functions_to_examine():
        new, old = [], []
        verdict = function_pickles._inputs(func, new)
        assert verdict == reference_inputs(func, old), func
        if verdict:
            assert len(new) == len(old) and all(a is b for a, b in zip(new, old)), func


def test_functions_with_a_globals_subclass_are_never_remembered():
    import types

    class Globals(dict):
        pass
    func = types.FunctionType((lambda x: x).__code__, Globals(__name__="m"))
    assert not function_pickles._inputs(func, [])
