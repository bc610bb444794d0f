"""Fast construction of validated domain records for the drivers' hot paths.

Owns: ``reading(dict)`` and ``status(dict)``: the same full pydantic validation as
``Reading(**fields)`` / ``DeviceStatus(**fields)`` (pydantic 2's ``__pydantic_validator__``),
minus the keyword-argument wrapper of ``BaseModel.__init__``, about a third of the cost of
a reading when a driver makes thousands a second.
Must not import: anything outside chairside.domain and pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chairside.domain.readings import DeviceStatus, Reading

reading: Callable[[dict[str, Any]], Reading] = Reading.__pydantic_validator__.validate_python
status: Callable[[dict[str, Any]], DeviceStatus] = DeviceStatus.__pydantic_validator__.validate_python
