"""Simple lambdas of PySpark programs, recognised and run as C callables.

``lambda w: (w, 1)``, ``lambda line: line.split(" ")``, ``lambda kv: kv[0]`` and
``lambda a, b: a + b`` are in nearly every PySpark program (and
``lambda line: tuple(line.split())`` in every one that parses text), and calling a Python
function per record costs more than the work it does. A function is replaced
only when its bytecode is exactly that of one of the templates below (same
instructions, same number of constants and names, no closure, no defaults that
could matter), so the replacement computes the same thing with the same
exceptions: ``zip(records, repeat(c))`` makes the tuples ``(x, c)``,
``operator.methodcaller``, ``operator.itemgetter`` and ``operator.add`` are the
C versions of the method call, the subscript and the ``+`` the lambda does.
Only a traceback differs: it has no frame for the lambda. Driver and workers run
the same Python minor version (ember.compat checks it), so the bytecode the
driver recognised is the bytecode the lambda would have run.

Examples
--------
>>> list(map_function(lambda w: (w, 1))(iter(["a", "b"])))
[('a', 1), ('b', 1)]
>>> as_callable(lambda line: line.split(" "))
operator.methodcaller('split', ' ')
>>> binary_operator(lambda a, b: a + b) is operator.add
True
>>> as_callable(lambda x: x.split(sep))        # a global: not a template
"""

from __future__ import annotations

import dis
import inspect
import operator
import types
from typing import Any, Callable, Iterator, Optional

from ember import fused_text


# The flags that change what code does; the others say where it was written
# (CO_NESTED) or which __future__ imports its module had.
_FLAGS = (inspect.CO_OPTIMIZED | inspect.CO_NEWLOCALS | inspect.CO_VARARGS
          | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR | inspect.CO_COROUTINE
          | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR)


# id(code object) -> (the code object, its shape): RDD.map asks for the shape
# of the same lambda's code at every job, twice. Code objects are immutable and
# the entry holds its own, so the id names it while the entry lives.
_SHAPES: dict[int, tuple[types.CodeType, tuple]] = {}


def _shape(code: types.CodeType) -> tuple:
    hit = _SHAPES.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    shape = _shape_of(code)
    if len(_SHAPES) >= 1024:
        _SHAPES.clear()
    _SHAPES[id(code)] = (code, shape)
    return shape


def _shape_of(code: types.CodeType) -> tuple:
    return (code.co_code, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
            code.co_flags & _FLAGS, len(code.co_consts), len(code.co_names),
            code.co_freevars, code.co_cellvars, code.co_nlocals)


# Templates: the bytecode of each shape; the constants and names are read from
# the user's function at the same positions.
_PAIR = _shape((lambda x: (x, 0)).__code__)                  # (x, c)
_METHOD_CALLS = {                                             # x.name(c1, ...)
    _shape((lambda x: x.m()).__code__): 0,
    _shape((lambda x: x.m(0)).__code__): 1,
    _shape((lambda x: x.m(0, 1)).__code__): 2,
}
_ITEM = _shape((lambda x: x[0]).__code__)                     # x[c]
_TUPLE_OF_METHOD_CALLS = {                                    # tuple(x.name(c1, ...))
    _shape((lambda x: tuple(x.m())).__code__): 0,
    _shape((lambda x: tuple(x.m(0))).__code__): 1,
}
_BINARY = {
    _shape((lambda a, b: a + b).__code__): operator.add,
    _shape((lambda a, b: a * b).__code__): operator.mul,
    _shape((lambda a, b: a - b).__code__): operator.sub,
    _shape((lambda a, b: a | b).__code__): operator.or_,
    _shape((lambda a, b: a & b).__code__): operator.and_,
}


def _code_of(f: Any) -> Optional[types.CodeType]:
    """f's code when f is a plain Python function without a closure."""
    if type(f) is not types.FunctionType or f.__closure__ is not None or f.__kwdefaults__:
        return None
    return f.__code__


def _constants(code: types.CodeType, count: int) -> Optional[tuple]:
    """The literals the code loads, in order, read from its instructions (not
    by position in co_consts: where a version puts None, or which small ints
    it loads without co_consts, is the compiler's business)."""
    values = tuple(ins.argval for ins in dis.get_instructions(code)
                   if ins.opname in ("LOAD_CONST", "LOAD_SMALL_INT"))
    return values if len(values) == count else None


def as_callable(f: Any) -> Optional[Callable[[Any], Any]]:
    """A C callable that computes f(x) for every x, when f is a recognised
    one-argument lambda; None otherwise."""
    code = _code_of(f)
    if code is None:
        return None
    shape = _shape(code)
    if shape in _METHOD_CALLS:
        constants = _constants(code, _METHOD_CALLS[shape])
        return None if constants is None else operator.methodcaller(code.co_names[0], *constants)
    if shape == _ITEM:
        constants = _constants(code, 1)
        return None if constants is None else operator.itemgetter(constants[0])
    return None


def split_call(f: Any) -> Optional[tuple]:
    """``(sep,)`` when f is ``lambda x: x.split()`` (sep None) or
    ``lambda x: x.split(c)`` for a constant c; None otherwise."""
    code = _code_of(f)
    if code is None or code.co_names[:1] != ("split",):
        return None
    count = _METHOD_CALLS.get(_shape(code))
    if count not in (0, 1):
        return None
    constants = _constants(code, count)
    if constants is None:
        return None
    return constants if constants else (None,)


def tuple_split_call(f: Any) -> Optional[tuple]:
    """``(splitter, sep)`` when f is ``lambda x: tuple(x.split())`` (sep None) or
    ``lambda x: tuple(x.split(c))`` for a constant c, with ``tuple`` the builtin
    where f runs; splitter is the C callable of the call, so that
    ``map(tuple, map(splitter, records))`` is ``map(f, records)``. None otherwise."""
    code = _code_of(f)
    if code is None or code.co_names[:2] != ("tuple", "split"):
        return None
    count = _TUPLE_OF_METHOD_CALLS.get(_shape(code))
    if count is None:
        return None
    constants = _constants(code, count)
    if constants is None:
        return None
    # a global named tuple, or other builtins, would change what the name means
    if "tuple" in f.__globals__ or f.__builtins__.get("tuple") is not tuple:
        return None
    return operator.methodcaller("split", *constants), (constants or (None,))[0]


def map_function(f: Any) -> Optional[Callable[[Iterator[Any]], Iterator[Any]]]:
    """A function of an iterator equal to ``map(f, iterator)`` built from C
    parts, when f is a recognised lambda; None otherwise."""
    code = _code_of(f)
    if code is not None and _shape(code) == _PAIR:
        constants = _constants(code, 1)
        if constants is None:
            return None
        constant = constants[0]
        # zip(records, repeat(constant)), of a type word count recognises (ember.fused_text)
        return lambda records: fused_text.paired_with(records, constant)
    c_callable = as_callable(f)
    if c_callable is None:
        return None
    return lambda records: map(c_callable, records)


def _works() -> bool:
    """Whether recognition gives the right callables on this interpreter;
    if not, nothing is replaced."""
    try:
        return (repr(as_callable(lambda x: x.pop(0))) == "operator.methodcaller('pop', 0)"
                and repr(as_callable(lambda d: d.get("k", "v")))
                == "operator.methodcaller('get', 'k', 'v')"
                and repr(as_callable(lambda x: x[1])) == "operator.itemgetter(1)"
                and list(map_function(lambda w: (w, 2))(iter("a"))) == [("a", 2)]
                and binary_operator(lambda a, b: a + b) is operator.add
                and repr(tuple_split_call(lambda x: tuple(x.split(",")))[0])
                == "operator.methodcaller('split', ',')")
    except Exception:  # noqa: BLE001 - any surprise turns recognition off
        return False


def binary_operator(f: Any) -> Any:
    """operator.add for ``lambda a, b: a + b`` (and likewise -, *, |, &); f otherwise."""
    code = _code_of(f)
    if code is None:
        return f
    return _BINARY.get(_shape(code), f)


if not _works():
    def as_callable(f: Any) -> Optional[Callable[[Any], Any]]:  # noqa: F811
        return None

    def map_function(f: Any) -> Optional[Callable[[Iterator[Any]], Iterator[Any]]]:  # noqa: F811
        return None

    def split_call(f: Any) -> Optional[tuple]:  # noqa: F811
        return None

    def tuple_split_call(f: Any) -> Optional[tuple]:  # noqa: F811
        return None

    def binary_operator(f: Any) -> Any:  # noqa: F811
        return f
