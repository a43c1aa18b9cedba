"""The demo city of Xuzhou, kept apart from the use cases: ``traceability demo`` and the tests use it.

It writes through the same public write path as the API (:mod:`traceability.services.recording`),
never a copy of it. Nothing in the service imports it (``make lint`` holds that line).
"""
