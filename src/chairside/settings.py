"""Chairside's one typed settings object, and where each effective value came from.

Owns: :class:`Settings` (pydantic-settings), the config file location, the precedence
(explicit arguments > ``CHAIRSIDE_<NAME>`` environment variables > TOML file > defaults)
and :func:`origins`. Must not import: textual, serial, any other chairside package.

The TOML file is ``<user config folder>/chairside/config.toml`` (platformdirs), or the
file named by ``CHAIRSIDE_CONFIG``. It holds flat ``key = value`` pairs with the field
names below; an unknown key is refused with the file and the key named. Paths are
expanded (``~``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

APP = "chairside"
ENV_PREFIX = "CHAIRSIDE_"
CONFIG_ENV = "CHAIRSIDE_CONFIG"


class SettingsError(ValueError):
    """A bad config file or environment value; the message names the file/variable and key."""


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP) / "config.toml"


def config_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """(path of the config file, True when it was named by CHAIRSIDE_CONFIG)."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    return default_config_path(), False


def _default_session_dir() -> Path:
    return platformdirs.user_data_path(APP) / "sessions"


def _default_log_dir() -> Path:
    return platformdirs.user_log_path(APP)


def _default_key_dir() -> Path:
    return platformdirs.user_config_path(APP) / "keys"


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML config file; refuses unknown keys naming the file and the key."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path, named = config_path()
        self.present = self.path.is_file()
        self.data: dict[str, Any] = {}
        if not self.present:
            if named:
                raise SettingsError(f"{self.path}: config file not found (named by {CONFIG_ENV})")
            return
        try:
            with open(self.path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{self.path}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise SettingsError(f"{self.path}: cannot read ({exc.strerror})") from None
        known = settings_cls.model_fields
        for key in data:
            if key not in known:
                raise SettingsError(
                    f"{self.path}: unknown setting {key!r} (known: {', '.join(known)})"
                )
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class Settings(BaseSettings):
    """The effective settings. Build with :func:`load_settings` (or ``Settings()``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, case_sensitive=False
    )

    port: str | None = Field(None, description="monitor port URL; none = the built-in simulator")
    driver: Literal["ge-s5", "masimo", "hl7"] = Field("ge-s5", description="monitor protocol driver")
    protocol: str = Field("iv-ketamine-depression", description="protocol template for new sessions")
    limits: Path | None = Field(None, description="limits file (TOML) for the alarm engine; none = the protocol template's profile")
    session_dir: Path = Field(default_factory=_default_session_dir, description="folder for session files")
    bell: bool = Field(True, description="sound the terminal bell for alarms")
    log_dir: Path = Field(default_factory=_default_log_dir, description="folder for log files")
    staff_initials: str | None = Field(None, description="initials recorded as the author of entries")
    # the HL7 listener (listen://): technical limits, not clinical numbers
    hl7_max_connections: int = Field(8, ge=1, le=256, description="HL7 listener: connections at once")
    hl7_idle_timeout_s: float = Field(120.0, gt=0, description="HL7 listener: close a connection with no complete message for this long")
    hl7_message_timeout_s: float = Field(30.0, gt=0, description="HL7 listener: close a connection whose message is not complete this long after its first byte")
    hl7_max_message_bytes: int = Field(1 << 20, ge=1024, description="HL7 listener: a bigger message is rejected (AR) and dropped")
    hl7_senders: tuple[str, ...] = Field((), description="HL7 listener: addresses of the monitors; a new connection from one evicts an idle one (empty: any peer)")
    key_dir: Path = Field(default_factory=_default_key_dir,
                          description="folder of the installation's signing key and the trusted keys")

    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("port", "staff_initials", "limits", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("session_dir", "log_dir", "key_dir", "limits", mode="after")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return None if v is None else v.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def origins(self) -> dict[str, str]:
        """Field name -> where its value came from: ``default``, the config file's path,
        ``env CHAIRSIDE_<NAME>`` or ``argument``."""
        return dict(self._origins)


def _env_name(environ: Mapping[str, str], field: str) -> str | None:
    want = (ENV_PREFIX + field).upper()
    for key in environ:
        if key.upper() == want:
            return key
    return None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment and config file (``overrides`` win).

    Raises :class:`SettingsError` with a one-line message naming the file or the
    environment variable and the key.
    """
    environ = os.environ
    path, _ = config_path(environ)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "?"
        where = _origin(field, overrides, environ, path, _toml_keys(path))
        if err.get("type") == "extra_forbidden":
            raise SettingsError(f"{where}: unknown setting {field!r}") from None
        raise SettingsError(f"{where}: {field}: {err['msg']}") from None
    keys = _toml_keys(path)
    settings._origins = {
        name: _origin(name, overrides, environ, path, keys) for name in Settings.model_fields
    }
    return settings


def _toml_keys(path: Path) -> set[str]:
    try:
        with open(path, "rb") as f:
            return set(tomllib.load(f))
    except (OSError, tomllib.TOMLDecodeError):
        return set()


def _origin(field: str, overrides: Mapping[str, Any], environ: Mapping[str, str], path: Path,
            toml_keys: set[str]) -> str:
    if field in overrides:
        return "argument"
    env = _env_name(environ, field)
    if env is not None:
        return f"env {env}"
    if field in toml_keys:
        return str(path)
    return "default"


def origins(settings: Settings) -> dict[str, str]:
    return settings.origins
