"""Exception classes. Each message names the thing that is wrong and how to fix it.

Two families: `PermanentError` (bad config, unknown name, refused credentials, data that contradicts
its manifest) can never heal by retrying, so the Airflow glue fails such a task at once
(`datamover.operators.base.fail_fast`); every other error is worth a retry with backoff.
"""


class DataMoverError(Exception):
    """Base class for every error this package raises on purpose."""


class PermanentError(DataMoverError):
    """An error no retry can fix: the task fails at once, without using its retries."""


class ConfigError(PermanentError):
    """A YAML config or a DAG param is missing, malformed or contradicts itself."""


class ConnectionCheckError(DataMoverError):
    """An Airflow connection does not work: unreachable, timing out (worth a retry)."""


class CredentialsError(ConnectionCheckError, PermanentError):
    """The service refused the connection's credentials, or the connection is not usable as defined."""


class SourceError(DataMoverError):
    """The source side of a transfer refused a request (missing object, changed object, ...)."""


class UnknownSourceError(SourceError, PermanentError):
    """The source has no such thing (unknown table, column, bucket or log): fix the name."""


class TransferError(DataMoverError):
    """Data did not arrive intact (size or checksum mismatch, aborted upload)."""


class IntegrityError(TransferError, PermanentError):
    """Local data contradicts its own manifest or checksum: re-sending the same bytes cannot help."""
