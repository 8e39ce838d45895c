"""SparkConf: key/value configuration of an application, as in PySpark."""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping, Optional

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


DEFAULTS_FILE_NAME = "ember-defaults.conf"
ENV_PREFIX = "EMBER_CONF_"
REDACTED = "*********(redacted)"
_SECRET_RE = re.compile(r"secret|password|token|credential", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a setting's value must never be shown (UI, API, logs).

    Examples
    --------
    >>> is_secret_key("spark.authenticate.secret"), is_secret_key("spark.app.name")
    (True, False)
    """
    return bool(_SECRET_RE.search(key))


def redacted(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The pairs as a dict, with the values of secrets replaced by ``REDACTED``.

    Examples
    --------
    >>> redacted([("a.password", "x"), ("b", "1")])
    {'a.password': '*********(redacted)', 'b': '1'}
    """
    return {k: REDACTED if is_secret_key(k) else v for k, v in pairs}


def parse_defaults_line(line: str) -> Optional[tuple[str, str]]:
    """One line of a defaults file: ``key value``, ``key=value`` or ``key = value``;
    None for a blank line or a ``#`` comment (the same rules as ember-submit's).

    Examples
    --------
    >>> parse_defaults_line("spark.app.name  my app")
    ('spark.app.name', 'my app')
    >>> parse_defaults_line("spark.x = 1"), parse_defaults_line("# note")
    (('spark.x', '1'), None)
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    match = re.match(r"([^\s=]+)([\s=]?)(.*)$", line)
    key, separator, rest = match.groups()
    rest = rest.lstrip(" \t")
    if separator != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(" \t")
    return key, rest


def defaults_file_path(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The defaults file in effect: ``EMBER_PROPERTIES_FILE`` (ember-submit's
    ``--properties-file``), else ``$EMBER_CONF_DIR/ember-defaults.conf``, else
    ``conf/ember-defaults.conf`` of the installation (the folder above the
    ``ember`` package's); None when there is none."""
    explicit = environ.get("EMBER_PROPERTIES_FILE")
    if explicit:
        if not os.path.isfile(explicit):
            raise FileNotFoundError(f"properties file {explicit} (EMBER_PROPERTIES_FILE, "
                                    "--properties-file) does not exist")
        return explicit
    candidates = []
    if environ.get("EMBER_CONF_DIR"):
        candidates.append(os.path.join(environ["EMBER_CONF_DIR"], DEFAULTS_FILE_NAME))
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(os.path.dirname(package_parent), "conf", DEFAULTS_FILE_NAME))
    candidates.append(os.path.join(package_parent, "conf", DEFAULTS_FILE_NAME))
    return next((c for c in candidates if os.path.isfile(c)), None)


def read_defaults_file(path: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of a defaults file, in order."""
    with open(path, encoding="utf-8") as fh:
        return [pair for pair in map(parse_defaults_line, fh) if pair]


def environment_settings(environ: Mapping[str, str] = os.environ) -> list[tuple[str, str]]:
    """Settings from the environment: ``EMBER_MASTER`` is ``spark.master``;
    ``EMBER_CONF_<key with . as _>`` sets any key
    (``EMBER_CONF_spark_executor_memory=2g`` is ``spark.executor.memory``;
    ``EMBER_CONF_DIR`` is where the defaults file is, not a setting).

    Examples
    --------
    >>> environment_settings({"EMBER_CONF_spark_driver_maxResultSize": "2g"})
    [('spark.driver.maxResultSize', '2g')]
    """
    pairs = [(name[len(ENV_PREFIX):].replace("_", "."), value)
             for name, value in sorted(environ.items())
             if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX)
             and name != "EMBER_CONF_DIR"]
    if environ.get("EMBER_MASTER"):
        pairs.append(("spark.master", environ["EMBER_MASTER"]))
    return pairs


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
