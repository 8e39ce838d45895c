"""SparkConf: key/value configuration of an application, as in PySpark."""

from __future__ import annotations

from typing import Iterable, Optional


class SparkConf:
    """Configuration for an Ember application.

    Examples
    --------
    >>> conf = SparkConf().setMaster("local[2]").setAppName("wc")
    >>> conf.get("spark.app.name")
    'wc'
    """

    def __init__(self, loadDefaults: bool = True) -> None:
        self._settings: dict[str, str] = {}

    def set(self, key: str, value: object) -> "SparkConf":
        self._settings[key] = str(value)
        return self

    def setIfMissing(self, key: str, value: object) -> "SparkConf":
        self._settings.setdefault(key, str(value))
        return self

    def setAll(self, pairs: Iterable[tuple[str, object]]) -> "SparkConf":
        for key, value in pairs:
            self.set(key, value)
        return self

    def setMaster(self, value: str) -> "SparkConf":
        return self.set("spark.master", value)

    def setAppName(self, value: str) -> "SparkConf":
        return self.set("spark.app.name", value)

    def get(self, key: str, defaultValue: Optional[str] = None) -> Optional[str]:
        return self._settings.get(key, defaultValue)

    def contains(self, key: str) -> bool:
        return key in self._settings

    def getAll(self) -> list[tuple[str, str]]:
        return list(self._settings.items())

    def toDebugString(self) -> str:
        return "\n".join(f"{k}={v}" for k, v in sorted(self._settings.items()))
