"""A secret value as a type that cannot be printed by accident."""

from __future__ import annotations

from seks.store.aws_credentials import AwsCredentials

__all__ = ["Secret"]


class Secret:
    """A decrypted credential. ``repr``/``str`` never show the value; ``reveal()`` does.

    ``reveal()`` is called in exactly one place per use: where the credential is injected.
    """

    __slots__ = ("_value", "name", "provider", "version")

    def __init__(self, name: str, provider: str, version: int, value: str) -> None:
        self.name = name
        self.provider = provider
        self.version = version
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub_values(self) -> list[str]:
        """The parts of the value that must never reach an agent (an AWS secret's JSON holds
        an access key id, which identifies, beside its secret key and session token)."""
        if self.provider == "aws":
            return AwsCredentials.from_json(self._value).secret_values()
        return [self._value]

    def __repr__(self) -> str:
        return (
            f"Secret(name={self.name!r}, provider={self.provider!r}, "
            f"version={self.version}, value=<redacted>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value to wherever the pickle goes (a flow dump, a cache).
        raise TypeError("Secret values cannot be pickled")
