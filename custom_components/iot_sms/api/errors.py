"""Typed errors raised by the provider clients."""

from __future__ import annotations


class IotSmsError(Exception):
    """Base class for every error a provider client raises."""


class AuthError(IotSmsError):
    """The credentials were rejected (bad token, bad password, revoked)."""


class IpNotAllowedError(IotSmsError):
    """The provider refuses requests from this IP address (Eseye error 510)."""


class ConnectionFailed(IotSmsError):
    """The provider could not be reached, timed out, or answered with a server error."""


class RateLimited(IotSmsError):
    """The provider kept answering 429 after the client's own back-off."""


class InvalidRequest(IotSmsError):
    """The provider rejected the request as invalid (4xx, Eseye 5xx codes)."""


class NotFound(InvalidRequest):
    """The endpoint or message does not exist."""


class NoCredit(InvalidRequest):
    """The destination has no credit (Eseye error 570)."""


class CharacterSetError(InvalidRequest):
    """The text uses characters the chosen encoding cannot carry (Eseye error 580)."""


class MessageTooLong(InvalidRequest):
    """The text needs more parts than allowed, or the provider says it is too long."""


class NotCancellable(IotSmsError):
    """The message can no longer be canceled (already delivered, final or unknown)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        """Keep the status the provider reported, so callers can show it."""
        super().__init__(message)
        self.status = status


class DeliveryUnknown(IotSmsError):
    """A send may have reached the provider; it is never retried, so the outcome is unknown."""


class NotSent(IotSmsError):
    """The provider provably did not take a send that looked ambiguous: safe to retry."""


class InvalidCallback(IotSmsError):
    """A callback body could not be parsed; answered with 400."""


class SignatureError(InvalidCallback):
    """A callback's signature is missing or wrong; answered with 401."""
