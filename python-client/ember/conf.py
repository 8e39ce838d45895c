"""SparkConf: key/value configuration of an application, as in PySpark."""

from __future__ import annotations

import re
from typing import Iterable, Optional

_system_properties: dict[str, str] = {}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str, default_unit: str = "b") -> int:
    """Bytes of a Spark size string: ``"512m"``, ``"1g"``, ``"64k"``, ``"100"``.

    Units are powers of 1024 (``k``, ``m``, ``g``, ``t``, ``p``, optionally
    followed by ``b``); a bare number is in ``default_unit``.

    Parameters
    ----------
    text : str
    default_unit : str
        ``"b"`` (Spark's byte strings, e.g. ``spark.driver.maxResultSize``) or
        ``"m"`` (``spark.python.worker.memory``).

    Returns
    -------
    int

    Examples
    --------
    >>> parse_size("1g")
    1073741824
    >>> parse_size("512", default_unit="m")
    536870912
    """
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError(f"invalid size '{text}': use a number with an optional unit "
                         "k, m, g or t (e.g. 512m, 1g)")
    number, unit, suffix = match.groups()
    if not unit and not suffix:
        unit = default_unit.lower().rstrip("b")
    return int(float(number) * _UNITS[unit.lower()])


def set_system_property(key: str, value: object) -> None:
    """A default that SparkConf objects created later load (``SparkContext.setSystemProperty``)."""
    _system_properties[key] = str(value)


class SparkConf:
    """Configuration for an Ember application.

    Parameters
    ----------
    loadDefaults : bool
        Load the ``spark.*`` properties set with SparkContext.setSystemProperty.

    Examples
    --------
    >>> conf = SparkConf().setMaster("local[2]").setAppName("wc")
    >>> conf.get("spark.app.name")
    'wc'
    """

    def __init__(self, loadDefaults: bool = True) -> None:
        self._settings: dict[str, str] = {}
        if loadDefaults:
            self._settings.update((k, v) for k, v in _system_properties.items()
                                  if k.startswith("spark."))

    def set(self, key: str, value: object) -> "SparkConf":
        """Sets one key; the value is kept as a string."""
        self._settings[key] = str(value)
        return self

    def setIfMissing(self, key: str, value: object) -> "SparkConf":
        """Sets the key only when it has no value yet."""
        self._settings.setdefault(key, str(value))
        return self

    def setAll(self, pairs: Iterable[tuple[str, object]]) -> "SparkConf":
        """Sets every (key, value) pair."""
        for key, value in pairs:
            self.set(key, value)
        return self

    def setMaster(self, value: str) -> "SparkConf":
        """``spark.master``: ``local[N]``, ``local[*]`` or ``ember://HOST:PORT``."""
        return self.set("spark.master", value)

    def setAppName(self, value: str) -> "SparkConf":
        """``spark.app.name``: the name shown in the web UI."""
        return self.set("spark.app.name", value)

    def setSparkHome(self, value: str) -> "SparkConf":
        """``spark.home`` (kept for compatibility; Ember does not use it)."""
        return self.set("spark.home", value)

    def setExecutorEnv(self, key: Optional[str] = None, value: Optional[str] = None,
                       pairs: Optional[Iterable[tuple[str, str]]] = None) -> "SparkConf":
        """``spark.executorEnv.KEY`` for one key or for pairs, as in PySpark."""
        if (key is not None and pairs is not None) or (key is None and pairs is None):
            raise ValueError("Either pass one key-value pair or a list of pairs")
        if key is not None:
            self.set("spark.executorEnv." + key, value)
        for k, v in pairs or ():
            self.set("spark.executorEnv." + k, v)
        return self

    def get(self, key: str, defaultValue: Optional[str] = None) -> Optional[str]:
        """The value of key, or defaultValue."""
        return self._settings.get(key, defaultValue)

    def contains(self, key: str) -> bool:
        """Whether key has a value."""
        return key in self._settings

    def getAll(self) -> list[tuple[str, str]]:
        """Every (key, value) pair."""
        return list(self._settings.items())

    def toDebugString(self) -> str:
        """``key=value`` lines, sorted by key."""
        return "\n".join(f"{k}={v}" for k, v in sorted(self._settings.items()))
