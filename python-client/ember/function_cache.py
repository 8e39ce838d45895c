"""Unpickled task functions kept by a Python subprocess for later tasks.

Every task ships its cloudpickled functions, and unpickling them (code objects,
closures, a dozen nested functions for `parallelize().map().sum()`) was most of
the Python time of a tiny task. A function is kept, keyed on its exact pickle
bytes, only when it is proven free of mutable state: then a task cannot tell
the kept object from a fresh unpickle. Anything a task could change and a
later task see (a captured list, a mutable default, a global or `nonlocal`
rebound, an attribute set on a function, an accumulator, an instance of a
class) makes the function unpickled per task as before, as PySpark and Spark do.

The rule (`is_stateless`): what unpickling made anew must be immutable. Objects
pickled by reference (modules, importable classes and functions, builtins) are
the process's own, shared by every unpickle already, so they are accepted
without looking inside. What unpickling builds by value is walked:
None/bool/int/float/complex/str/bytes/range/compiled patterns, tuples and
frozensets of accepted values, functools.partial and operator's getters of
accepted values, bound methods of accepted objects, ember's broadcast handles
(their value is looked up when used), combineByKey's Aggregator and sortByKey's
RangePartitioner, and functions whose closure cells, defaults and shipped globals are accepted and
whose code (nested code included) never stores to a global, to a closure
cell that outlives a call or to an attribute, and never names
globals()/setattr()/__dict__ and the like. Code pickled by reference (a
library the function calls) is not examined: it is the process's own, and
one that sets attributes on a function handed to it could tell a kept
function from a fresh one.
"""

from __future__ import annotations

import dis
import functools
import operator
import pickle
import re
import sys
import types
from collections import OrderedDict
from typing import Any, Iterator

from ember.broadcast import Broadcast
from ember.serializers import _BroadcastFunction
from ember.shuffle import Aggregator, RangePartitioner

MAX_ENTRIES = 256
MAX_BYTES = 16 << 20           # pickle bytes of the kept functions (the keys)
PROPERTY = "spark.ember.pyexec.functionCache"

_IMMUTABLE_SCALARS = frozenset({
    type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis),
    type(NotImplemented), re.Pattern, types.CodeType,
})
# Pickled by reference (a qualified name) and without state of their own.
_DESCRIPTORS = frozenset({
    types.MethodDescriptorType, types.WrapperDescriptorType, types.ClassMethodDescriptorType,
    types.GetSetDescriptorType, types.MemberDescriptorType,
})
_GETTERS = frozenset({operator.itemgetter, operator.attrgetter, operator.methodcaller})
# Opcodes that change state outside the call (STORE_DEREF/DELETE_DEREF are
# judged by their cell); names that reach a function's globals or attributes.
_STATE_WRITES = frozenset(dis.opmap[name] for name in
                          ("STORE_GLOBAL", "DELETE_GLOBAL", "STORE_ATTR", "DELETE_ATTR"))
_CELL_WRITES = frozenset(dis.opmap[name] for name in ("STORE_DEREF", "DELETE_DEREF"))
_FORBIDDEN_NAMES = frozenset({
    "globals", "locals", "vars", "exec", "eval", "setattr", "delattr", "__setattr__",
    "__delattr__", "__dict__", "__defaults__", "__kwdefaults__", "__closure__", "__code__",
    "__globals__", "cell_contents",
})
_GLOBALS_NOT_STATE = frozenset({"__builtins__", "__name__", "__package__", "__file__", "__path__"})


def _by_reference(obj: Any) -> bool:
    """True when obj is what its module holds under its qualified name: the
    object a by-reference pickle resolves to, shared by every unpickle."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or module.__name__ == "__main__" or not isinstance(qualname, str):
        return False
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            return False
    return target is obj


def _code_tree(code: types.CodeType,
               outliving: frozenset) -> Iterator[tuple[types.CodeType, frozenset]]:
    """code and the code objects nested in it, each with the names of its free
    variables whose cells outlive a call (those of the outermost function)."""
    yield code, outliving
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_tree(const, outliving.intersection(const.co_freevars))


def _code_is_pure(code: types.CodeType) -> tuple[bool, set[str]]:
    """(whether code keeps its hands off state that outlives a call, the
    global names it and its nested code may read)."""
    names: set[str] = set()
    for part, outliving in _code_tree(code, frozenset(code.co_freevars)):
        if _FORBIDDEN_NAMES.intersection(part.co_names):
            return False, names
        names.update(part.co_names)
        # Two bytes per instruction, the opcode first (arguments and inline
        # caches never sit at even offsets): a set of opcodes in C, where
        # dis.get_instructions took milliseconds for a dozen functions.
        opcodes = frozenset(part.co_code[::2])
        if opcodes & _STATE_WRITES:
            return False, names
        if outliving and opcodes & _CELL_WRITES and _writes_cell(part, outliving):
            return False, names
    return True, names


def _writes_cell(code: types.CodeType, outliving: frozenset) -> bool:
    return any(instruction.opcode in _CELL_WRITES and instruction.argval in outliving
               for instruction in dis.get_instructions(code))


def _function_parts(func: types.FunctionType) -> list[Any] | None:
    """What a by-value function holds that must be immutable, or None when
    its code could change state another task would see."""
    if func.__dict__:
        return None
    pure, names = _code_is_pure(func.__code__)
    if not pure:
        return None
    parts: list[Any] = list(func.__defaults__ or ())
    parts.extend((func.__kwdefaults__ or {}).values())
    for cell in func.__closure__ or ():
        try:
            parts.append(cell.cell_contents)
        except ValueError:     # an empty cell (a name bound after the function was made)
            pass
    shipped = func.__globals__
    parts.extend(shipped[name] for name in names
                 if name in shipped and name not in _GLOBALS_NOT_STATE)
    return parts


def _parts(obj: Any) -> list[Any] | None:
    """The objects inside obj that must be accepted too; None: obj is refused."""
    kind = type(obj)
    if kind in _IMMUTABLE_SCALARS or kind in _DESCRIPTORS or kind is types.ModuleType:
        return []
    if kind is tuple or kind is frozenset:
        return list(obj)
    if isinstance(obj, type):
        return [] if _by_reference(obj) else None
    if kind is types.FunctionType:
        return [] if _by_reference(obj) else _function_parts(obj)
    if kind is types.BuiltinFunctionType or kind is types.MethodWrapperType:
        owner = obj.__self__
        return [] if owner is None or type(owner) is types.ModuleType else [owner]
    if kind is types.MethodType:
        return [obj.__func__, obj.__self__]
    if kind is functools.partial:
        if getattr(obj, "__dict__", None):
            return None
        return [obj.func, *obj.args, *obj.keywords.values()]
    if kind in _GETTERS:
        return list(obj.__reduce__())
    if kind is Broadcast:
        state = vars(obj)
        if state.keys() == {"_sc", "bid"} and state["_sc"] is None and type(state["bid"]) is int:
            return []
        return None
    return _ember_parts(obj)


_AGGREGATOR_FIELDS = frozenset({"createCombiner", "mergeValue", "mergeCombiners"})


def _ember_parts(obj: Any) -> list[Any] | None:
    """ember's own objects that are never changed once made."""
    kind = type(obj)
    if kind is Aggregator and vars(obj).keys() == _AGGREGATOR_FIELDS:
        return list(vars(obj).values())
    if kind is RangePartitioner:           # __slots__: no other attributes
        return [obj.bounds, obj.ascending, obj.numPartitions, obj.keyfunc]
    if kind is _BroadcastFunction and vars(obj).keys() == {"holder"}:
        return [obj.holder]    # the function itself is the broadcast's value, kept per process
    return None


def is_stateless(obj: Any) -> bool:
    """True when nothing a task does through obj can be seen by a later task
    that unpickled the same bytes (see the module's docstring)."""
    seen: dict[int, Any] = {}         # holds what it saw: a temporary's id is not reused
    stack = [obj]
    try:
        while stack:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen[id(item)] = item
            parts = _parts(item)
            if parts is None:
                return False
            stack.extend(parts)
    except Exception:  # noqa: BLE001 - an object that resists inspection is not proven stateless
        return False
    return True


_SEEN_ONCE = object()   # unpickled once: a function seen again is examined then
_REFUSED = object()     # not proven stateless: unpickled for every task
_MISSING = object()


class FunctionCache:
    """Unpickled functions by their exact pickle bytes, least recently used
    out past MAX_ENTRIES or MAX_BYTES. A pickle is examined (is_stateless)
    the second time it comes, so a function used by one task only (a new
    lambda per job) costs no examination; refused ones are remembered as
    keys only, and not examined again. Entries belong to one application."""

    def __init__(self) -> None:
        self.entries: "OrderedDict[bytes, Any]" = OrderedDict()
        self.bytes = 0
        self.app = ""
        self.enabled = True
        self.hits = 0                  # functions the current task took from here

    def begin_task(self, app: str, properties: dict) -> None:
        self.hits = 0
        self.enabled = properties.get(PROPERTY, "true").strip().lower() not in ("false", "0")
        if app != self.app or not self.enabled:
            self.app = app
            self.clear()

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0

    def load(self, data: bytes) -> Any:
        """pickle.loads(data), or the object kept for the same bytes."""
        if not self.enabled:
            return pickle.loads(data)
        kept = self.entries.get(data, _MISSING)
        if kept is _MISSING:
            obj = pickle.loads(data)
            if len(data) <= MAX_BYTES:
                self._add(data, _SEEN_ONCE)
            return obj
        self.entries.move_to_end(data)
        if kept is _REFUSED:
            return pickle.loads(data)
        if kept is _SEEN_ONCE:
            obj = pickle.loads(data)
            self.entries[data] = obj if is_stateless(obj) else _REFUSED
            return obj
        self.hits += 1
        return kept

    def _add(self, data: bytes, value: Any) -> None:
        self.entries[data] = value
        self.bytes += len(data)
        while len(self.entries) > MAX_ENTRIES or self.bytes > MAX_BYTES:
            old, _ = self.entries.popitem(last=False)
            self.bytes -= len(old)
