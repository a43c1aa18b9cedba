"""Limits on sign-in, credential checks and capture: the figures, and the pure rules that apply them.

Sign-in (console passwords) is limited by counts kept in the database, so every server process
sees the same numbers and parallel attempts cannot slip under them. Failures are counted three
ways within :data:`WINDOW` (a quiet spell as long as the window starts a count again):

- per account **and** source address: :data:`PAIR_FAILURES` failures lock that account for that
  address only, so guessing from elsewhere never locks a regulator out of their own desk;
- per source address, whatever names it tries: :data:`SOURCE_FAILURES`;
- per account from every source together: :data:`ACCOUNT_FAILURES`; past it the account is
  refused only from addresses it has never signed in from (its own desks still get in).

Failed credential checks (an unknown, revoked or expired bearer credential, a bad station signature)
are counted per source address in the database too: past :data:`CREDENTIAL_FAILURES` within
:data:`CREDENTIAL_WINDOW`, that address's unknown credentials get 429 without a lookup.

Capture is limited per credential by a token bucket in each server process (``TRACE_CAPTURE_RATE``
requests a second, bursts of ``TRACE_CAPTURE_BURST``). The figures and why they were chosen are
in the README's security section.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

WINDOW = timedelta(minutes=15)
PAIR_FAILURES = 5
SOURCE_FAILURES = 50
ACCOUNT_FAILURES = 100
KNOWN_SOURCE_FOR = timedelta(days=90)
"""How long an address the account signed in from stays exempt from the account-wide limit."""
CREDENTIAL_WINDOW = timedelta(minutes=5)
CREDENTIAL_FAILURES = 60
SIGN_IN_RATE = 1.0
"""Sign-in requests a second per source address (each costs an argon2id check), bursts of SIGN_IN_BURST."""
SIGN_IN_BURST = 30


def source_key(address: str | None) -> str:
    """The unit a limit counts: an IPv4 address, or the /64 an IPv6 address belongs to (one host's share)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class SignInCounts:
    """Failures (this attempt included) counted for one sign-in attempt, and whether its source is known."""

    pair: int
    source: int
    account: int
    known_source: bool


def sign_in_refusal(counts: SignInCounts, account_failures: int = ACCOUNT_FAILURES) -> str | None:
    """Which limit refuses this attempt (``pair``, ``source`` or ``account``), or None to check the password.

    ``account_failures``: the account-wide limit (a stall card, which only its holder can try, uses
    the pair's figure, so its PIN cannot be guessed from many places at once).
    """
    if counts.source > SOURCE_FAILURES:
        return "source"
    if counts.pair > PAIR_FAILURES:
        return "pair"
    if counts.account > account_failures and not counts.known_source:
        return "account"
    return None


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 when the request may go ahead (a token is taken), else the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else math.inf


class Buckets:
    """One token bucket per key (a credential, an address), the least recently used forgotten past ``size``.

    A forgotten bucket was idle, so it would have been full again: forgetting it changes nothing.
    """

    def __init__(self, rate: float, burst: int, size: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.size = size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0 when ``key`` may go ahead, else the seconds to wait (for ``Retry-After``)."""
        if self.rate <= 0:  # limit switched off
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
