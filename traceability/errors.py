"""The error tree. Every error the service raises on purpose is a :class:`TraceError`.

::

    TraceError                       500 internal_error
    ├── ConfigError                  500 config_error       (startup: a setting is wrong)
    ├── SchemaError                  500 schema_mismatch    (startup: migrations behind/ahead/edited)
    ├── BadRequest                   400 bad_request
    │   ├── InvalidJSON              400 invalid_json
    │   ├── InvalidField             422 invalid_field      (names the field)
    │   │   ├── UnknownReference     422 unknown_reference  (an id in the body that does not exist)
    │   │   └── TooManyEvents        422 too_many_events
    │   ├── InvalidTraceCode         400 invalid_trace_code
    │   └── VoucherRefused           422 voucher_bad_signature, voucher_altered, … (409 voucher_inconsistent,
    │                                voucher_split_view; 503 voucher_unverified with Retry-After)
    ├── Unauthorized                 401 unauthorized
    ├── Forbidden                    403 forbidden
    │   └── CustodyRefused           403 not_holder, not_destination, … (the custody rule it breaks)
    ├── NotFound                     404 not_found
    ├── Conflict                     409 conflict
    │   ├── EventConflict            409 event_conflict     (same event id, other content)
    │   ├── BatchUnavailable         409 batch_recalled, batch_on_hold (receiving goods that may not move)
    │   ├── AlreadyExists            409 already_exists
    │   ├── NotYetLogged             409 not_yet_logged     (wait for the log's sequencer; Retry-After)
    │   └── InsideSafetyInterval     409 inside_safety_interval (a harvest or slaughter too soon after an input)
    ├── PayloadTooLarge              413 payload_too_large
    ├── TooManyRequests              429 too_many_requests  (a rate limit; Retry-After says when)
    │   └── LockedOut                429 locked_out         (too many failed sign-ins)
    └── StorageUnavailable           503 storage_unavailable
        └── Contention               503 storage_unavailable (concurrent writers collided; retried first)

``storage/`` translates every asyncpg error into these (``storage.database.translate``); nothing
above it, the HTTP layer included, ever sees asyncpg.
"""

from __future__ import annotations


class TraceError(Exception):
    """Something went wrong on our side."""

    status = 500
    code = "internal_error"
    retry_after: float | None = None
    """Seconds after which a retry may succeed (sent as ``Retry-After``), where that is known."""

    def __init__(
        self, message: str | None = None, *, field: str | None = None, retry_after: float | None = None
    ) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.field = field
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)


class ConfigError(TraceError):
    """A setting is missing or malformed."""

    code = "config_error"


class SchemaError(TraceError):
    """The database schema does not match this version of the code."""

    code = "schema_mismatch"


class BadRequest(TraceError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class InvalidJSON(BadRequest):
    """The body is not valid JSON."""

    code = "invalid_json"


class InvalidField(BadRequest):
    """A field is missing or has a wrong value."""

    status = 422
    code = "invalid_field"


class UnknownReference(InvalidField):
    """The body refers to something that does not exist."""

    code = "unknown_reference"


class TooManyEvents(InvalidField):
    """Too many events in one request."""

    code = "too_many_events"


class InvalidTraceCode(BadRequest):
    """The trace code is malformed or its check digit does not match."""

    code = "invalid_trace_code"


class VoucherRefused(BadRequest):
    """A handover voucher that does not prove what it claims (or not consistently with what was seen)."""

    status = 422

    def __init__(self, reason: str, message: str, *, status: int = 422, retry_after: float | None = None) -> None:
        super().__init__(message, field="voucher", retry_after=retry_after)
        self.code = f"voucher_{reason}"
        self.status = status


class NoticeRefused(BadRequest):
    """A recall notice from another member ledger that is forged, not for this ledger, stale or replayed."""

    status = 422

    def __init__(self, reason: str, message: str, *, status: int = 422) -> None:
        super().__init__(message, field="notice")
        self.code = f"notice_{reason}"
        self.status = status


class Unauthorized(TraceError):
    """A valid credential is required."""

    status = 401
    code = "unauthorized"


class Forbidden(TraceError):
    """This credential may not do that."""

    status = 403
    code = "forbidden"


class CustodyRefused(Forbidden):
    """Only the node that holds a batch may record about it."""

    def __init__(self, rule: str, message: str, *, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message, field=field)
        self.code = rule
        self.index = index
        """Which of the checked events broke the rule (an EPCIS document reports it per event)."""


class NotFound(TraceError):
    """Nothing is recorded under that name."""

    status = 404
    code = "not_found"


class Conflict(TraceError):
    """The request conflicts with what is already recorded."""

    status = 409
    code = "conflict"


class EventConflict(Conflict):
    """An event with this id was already recorded with different content."""

    code = "event_conflict"


class BatchUnavailable(Conflict):
    """The batch is recalled or on hold: it may not be received."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code


class NotYetLogged(Conflict):
    """The event is recorded and waits for the transparency log's sequencer: retry in a second."""

    code = "not_yet_logged"
    retry_after = 1.0


class AlreadyExists(Conflict):
    """Something with that identifier is already registered."""

    code = "already_exists"


class InsideSafetyInterval(Conflict):
    """The plot, pen or herd is inside an input's safety interval (安全间隔期 / 休药期)."""

    code = "inside_safety_interval"


class PayloadTooLarge(TraceError):
    """The request body is larger than the server accepts."""

    status = 413
    code = "payload_too_large"


class TooManyRequests(TraceError):
    """Too many requests; wait as long as Retry-After says, then try again."""

    status = 429
    code = "too_many_requests"
    retry_after = 1.0


class LockedOut(TooManyRequests):
    """Too many failed sign-in attempts; wait before trying again."""

    code = "locked_out"

    @property
    def minutes(self) -> int:
        """The wait in whole minutes, at least one (for the sign-in pages)."""
        return max(1, -(-int(self.retry_after or 60) // 60))


class StorageUnavailable(TraceError):
    """The database cannot be reached right now; retry later."""

    status = 503
    code = "storage_unavailable"
    retry_after = 1.0


class Contention(StorageUnavailable):
    """The ledger is too busy to take this now; retry."""

    # A serialization failure, a deadlock, or a key a concurrent writer took since we looked.
    # Database.transaction runs the work again; only when its attempts run out does a client see it.
