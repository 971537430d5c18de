"""Rate limits (the `limits` library, which slowapi is built on): in memory by default,
in Redis when REDIS_URL is set so every worker and host shares one count."""

import logging
import math
import time
from functools import lru_cache

import limits
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from app.core.config import get_settings
from app.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 0.5


@lru_cache
def storage() -> Storage:
    url = get_settings().REDIS_URL
    if url is None:
        found = storage_from_string("memory://")
    else:
        found = storage_from_string(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    assert isinstance(found, Storage)  # memory:// and redis:// are synchronous storages
    return found


@lru_cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage())


@lru_cache
def _parse(rate: str) -> limits.RateLimitItem:
    return limits.parse(rate)


def hit(name: str, rate: str, *keys: str) -> None:
    """Count one attempt under `name` for `keys`; raise RateLimited once over `rate`."""
    if not get_settings().RATE_LIMIT_ENABLED:
        return
    item = _parse(rate)
    try:
        if _limiter().hit(item, name, *keys):
            return
        reset_at = _limiter().get_window_stats(item, name, *keys).reset_time
    except (RedisError, OSError) as error:
        fail_open = get_settings().RATE_LIMIT_FAIL_OPEN
        logger.error(
            "rate limit storage unavailable (%s); failing %s",
            type(error).__name__,
            "open" if fail_open else "closed",
        )
        if fail_open:
            return
        raise ServiceUnavailable("Rate limiting is unavailable") from None
    raise RateLimited(retry_after=max(1, math.ceil(reset_at - time.time())))


def reset() -> None:
    """Forget every count (tests, and `manage` after an incident)."""
    storage().reset()
