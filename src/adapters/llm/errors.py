"""Provider SDK errors → ProviderError, with Retry-After read from the response (seconds, HTTP-date, or
OpenAI's retry-after-ms)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import httpx2  # the HTTP client under the openai and anthropic SDKs

from src.ports.models import ProviderError

RETRYABLE_STATUS = {408, 409, 429}


def retry_after_seconds(headers: httpx.Headers | dict | None, now: datetime | None = None) -> float | None:
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def mapped(provider: str, exc: Exception, status_error: type, api_error: type) -> ProviderError:
    """An SDK exception as ProviderError; anything that is not an SDK or HTTP error is re-raised."""
    if isinstance(exc, status_error):
        return provider_error(provider, exc.status_code, exc.message, exc.response.headers)
    if isinstance(exc, api_error | httpx.HTTPError | httpx2.HTTPError):
        return provider_error(provider, None, str(exc) or type(exc).__name__)
    raise exc


def provider_error(provider: str, status: int | None, message: str, headers=None) -> ProviderError:
    retryable = status is None or status in RETRYABLE_STATUS or status >= 500
    text = f"{provider}: {status}: {message}" if status else f"{provider}: {message}"
    return ProviderError(text[:500], retryable=retryable, retry_after=retry_after_seconds(headers), status=status)
