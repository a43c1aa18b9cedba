"""Applying the limits of :mod:`traceability.domain.limits`: sign-in counts, failed credential checks, buckets.

Sign-in attempts are charged in the database *before* the password is checked (and refunded on
success), so fifteen wrong passwords sent at once are fifteen failures, not five that each saw a
count of zero. Failed credential checks are counted per source address in the database too; each
process remembers which sources are over the limit so it can refuse them without a lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from traceability import errors
from traceability.domain import limits
from traceability.logging import get_logger
from traceability.storage import throttle_repo
from traceability.storage.database import Database

log = get_logger(__name__)

FORGET_AFTER = timedelta(days=1)

_REFUSALS = {
    "pair": "too many failed sign-ins for this account from here",
    "source": "too many failed sign-ins from this address",
    "account": "too many failed sign-ins for this account; it is open only from places it signed in from before",
}
_REFUSALS_ZH = {
    "pair": "该账号在此处登录失败次数过多",
    "source": "此地址登录失败次数过多",
    "account": "该账号登录失败次数过多，目前只能在以前登录过的地点登录",
}


def _keys(name: str, source: str) -> list[tuple[str, str]]:
    return [("pair", f"{name}\x1f{source}"), ("account", name)]


async def charge_sign_in(
    db: Database, name: str, source: str, *, account_failures: int = limits.ACCOUNT_FAILURES
) -> None:
    """Count this attempt as a failure until it succeeds; raise LockedOut (429) when a limit refuses it."""
    async with db.connection() as conn:
        counted = await throttle_repo.charge(conn, [("source", source)], limits.WINDOW)
        counts = limits.SignInCounts(pair=0, source=int(counted["source"]["failures"]), account=0, known_source=False)
        if counts.source <= limits.SOURCE_FAILURES:
            more = await throttle_repo.charge(conn, _keys(name, source), limits.WINDOW)
            known = await throttle_repo.known_source(conn, name, source, limits.KNOWN_SOURCE_FOR)
            counts = limits.SignInCounts(
                pair=int(more["pair"]["failures"]),
                source=counts.source,
                account=int(more["account"]["failures"]),
                known_source=known,
            )
    refusal = limits.sign_in_refusal(counts, account_failures)
    if refusal is not None:
        minutes = int(limits.WINDOW.total_seconds() // 60)
        log.warning("login.locked_out", limit=refusal, failures=getattr(counts, refusal))
        raise errors.LockedOut(
            f"{_REFUSALS[refusal]}; try again in {minutes} minutes ({_REFUSALS_ZH[refusal]}，请 {minutes} 分钟后再试)",
            retry_after=limits.WINDOW.total_seconds(),
        )


async def signed_in(db: Database, user_id: int | None, name: str, source: str) -> None:
    """A correct password: refund the attempt, start the pair's count again, remember a user's source."""
    async with db.connection() as conn:
        await throttle_repo.refund(conn, [("source", source), *_keys(name, source)])
        if user_id is not None:
            await throttle_repo.remember_source(conn, user_id, source)
        await throttle_repo.forget_old(conn, FORGET_AFTER)


@dataclass
class CredentialGuard:
    """Failed credential checks per source address: counted in the database, refusals remembered here."""

    blocked: dict[str, float] = field(default_factory=dict)  # source -> monotonic time the block ends

    def check(self, source: str) -> None:
        """Refuse (429) a source that is over the limit, before any lookup."""
        until = self.blocked.get(source)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self.blocked[source]
            return
        raise errors.TooManyRequests(
            "too many failed credential checks from this address; wait before trying again", retry_after=left
        )

    async def failed(self, db: Database, source: str) -> None:
        """Count a failed check from ``source``; past the limit, block it (and raise 429)."""
        async with db.connection() as conn:
            counted = await throttle_repo.charge(conn, [("credential", source)], limits.CREDENTIAL_WINDOW)
        row = counted["credential"]
        if int(row["failures"]) > limits.CREDENTIAL_FAILURES:
            left = (row["last_failure"] + limits.CREDENTIAL_WINDOW - datetime.now(UTC)).total_seconds()
            self.blocked[source] = time.monotonic() + max(1.0, left)
            if len(self.blocked) > 100_000:  # an address flood: forget the oldest blocks first
                self.blocked.pop(next(iter(self.blocked)))
            log.warning("credential.source_blocked", failures=int(row["failures"]))
            self.check(source)


@dataclass
class Limits:
    """This process's limits: capture per credential, sign-in requests per source, failed checks per source."""

    capture: limits.Buckets
    sign_in: limits.Buckets = field(default_factory=lambda: limits.Buckets(limits.SIGN_IN_RATE, limits.SIGN_IN_BURST))
    credentials: CredentialGuard = field(default_factory=CredentialGuard)
    clock: Callable[[], float] = time.monotonic
    """The seconds the buckets refill by (a test holds it still to count a burst exactly)."""

    @classmethod
    def of(cls, capture_rate: float, capture_burst: int) -> Limits:
        return cls(capture=limits.Buckets(capture_rate, capture_burst))

    def take(self, buckets: limits.Buckets, key: str, what: str) -> None:
        """Take a token for ``key`` or raise 429 with the wait in Retry-After."""
        wait = buckets.take(key, self.clock())
        if wait > 0:
            raise errors.TooManyRequests(f"{what}: too many requests; retry after {limits.retry_after(wait)} s",
                                         retry_after=wait)  # fmt: skip
