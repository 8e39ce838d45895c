"""cloudpickle's bytes for functions that provably cannot have changed.

RDD.map and friends wrap the user's function in a new closure, so every job
pickles its functions anew (as PySpark does): a third of the driver's CPU for
a trivial job. cloudpickle's bytes for a function it pickles by value follow
from its code object, its attributes, its base globals (``__name__``,
``__package__``, ``__path__``, ``__file__``), the globals its code names and
its closure cells' contents. ``dumps`` remembers the bytes only of functions
whose every such input is immutable: strings, numbers, bytes, None, code
objects, or functions that qualify in turn; no defaults, no ``__dict__``
entries, no referenced global that exists. It answers from memory only when
each input is the *identical* object it was when the bytes were made
(identity, not equality: pickle's memo writes an object met twice as a
reference, so which inputs are the same object shows in the bytes). Anything
else is pickled as before.
"""

from __future__ import annotations

import base64
import types
from itertools import chain
from typing import Any, Callable

import cloudpickle

try:   # what cloudpickle 2 reads of a function is what _inputs lists; others: no cache
    from cloudpickle.cloudpickle import _extract_code_globals, _should_pickle_by_reference
    _ENABLED = cloudpickle.__version__.startswith("2.")
except ImportError:
    _ENABLED = False

_ATOMS = (type(None), bool, int, str, bytes)
_BASE_GLOBALS = ("__package__", "__name__", "__path__", "__file__")


class _Missing:
    """The value of a base global the module does not have."""


_MISSING = _Missing()
_MISSINGS = (_MISSING,) * len(_BASE_GLOBALS)
# Types a base global may have (or be missing); set tests run in C, one per
# function instead of a Python step per value.
_BASE_TYPES = frozenset(_ATOMS) | {_Missing}
_STR_ONLY = frozenset((str,))
_MAX_ENTRIES = 512
_MAX_DEPTH = 8

# id() of each input, in order -> (the inputs, the bytes). The entry holds the
# inputs, so none of those ids can be reused by another object while it lives.
_cache: dict[tuple[int, ...], tuple[list[Any], bytes]] = {}
# id(bytes of a remembered pickle) -> (those bytes, their base64 text once asked
# for): the job description carries the text, which a remembered function then
# does not encode again. Only bytes _cache holds are entered, and both are
# cleared together, so this keeps no pickle alive that _cache does not.
_remembered: dict[int, bytes] = {}
_texts: dict[int, tuple[bytes, str]] = {}
# id(code object) -> (the code object, the global names its code reads).
_code_names: dict[int, tuple[types.CodeType, Any]] = {}


def _code_globals(code: types.CodeType) -> Any:
    """_extract_code_globals(code), kept here too: cloudpickle's own cache is a
    WeakKeyDictionary, whose get() is Python code. The entry holds the code
    object (immutable), so its id names it for as long as the entry lives."""
    hit = _code_names.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    names = _extract_code_globals(code)
    if len(_code_names) >= _MAX_ENTRIES:
        _code_names.clear()
    _code_names[id(code)] = (code, names)
    return names


def _inputs(func: Any, out: list[Any], depth: int = 0) -> bool:
    """Appends what cloudpickle reads of func to out; False when func is not a
    plain function pickled by value or one of those inputs could change in place."""
    if type(func) is not types.FunctionType or depth > _MAX_DEPTH:
        return False
    if func.__defaults__ is not None or func.__kwdefaults__ is not None or func.__dict__:
        return False
    doc = func.__doc__
    if type(doc) not in _ATOMS:
        return False
    # A qualified name through <locals> is never found by reference: cloudpickle's
    # lookup (pickle's _getattribute) refuses that part, so the function goes by
    # value; the lookup is skipped for the wrappers RDD.map and friends make.
    if "<locals>" not in func.__qualname__.split(".") and _should_pickle_by_reference(func):
        return False
    code, f_globals = func.__code__, func.__globals__
    if type(f_globals) is not dict:    # a subclass's lookups could answer otherwise
        return False
    out += (code, func.__name__, func.__qualname__, func.__module__, doc, f_globals)
    base = tuple(map(f_globals.get, _BASE_GLOBALS, _MISSINGS))
    if not _BASE_TYPES.issuperset(map(type, base)):
        return False
    out += base
    if not f_globals.keys().isdisjoint(_code_globals(code)):
        return False                   # a global's value may change in place
    annotations = func.__annotations__
    out.append(len(annotations))
    if annotations:
        if not (_STR_ONLY.issuperset(map(type, annotations))
                and _STR_ONLY.issuperset(map(type, annotations.values()))):
            return False
        out += chain.from_iterable(annotations.items())
    closure = func.__closure__
    if closure is None:
        out.append(None)
        return True
    out.append(len(closure))
    for cell in closure:
        try:
            value = cell.cell_contents
        except ValueError:             # an empty cell
            return False
        out.append(value)
        if type(value) not in _ATOMS and not _inputs(value, out, depth + 1):
            return False
    return True


def dumps(func: Callable, pickle: Callable[[Callable], bytes]) -> bytes:
    """pickle(func), or the bytes it gave for the identical inputs before."""
    inputs: list[Any] = []
    if not _ENABLED or not _inputs(func, inputs):
        return pickle(func)
    key = tuple(map(id, inputs))
    hit = _cache.get(key)
    if hit is not None:                # same ids of live objects: the same objects
        return hit[1]
    data = pickle(func)
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
        _remembered.clear()
        _texts.clear()
    _cache[key] = (inputs, data)
    _remembered[id(data)] = data
    return data


def base64_text(data: bytes) -> str:
    """base64 of data as ASCII text, kept for the bytes of a remembered pickle."""
    hit = _texts.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    text = base64.b64encode(data).decode("ascii")
    if _remembered.get(id(data)) is data:
        _texts[id(data)] = (data, text)
    return text
