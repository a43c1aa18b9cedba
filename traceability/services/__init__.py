"""Use cases. Each runs in one transaction and speaks in domain terms and errors.TraceError."""
