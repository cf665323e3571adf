"""Exception classes. Each message names the thing that is wrong and how to fix it."""


class DataMoverError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(DataMoverError):
    """A YAML config or a DAG param is missing, malformed or contradicts itself."""


class ConnectionCheckError(DataMoverError):
    """An Airflow connection does not work: unreachable, wrong credentials, missing bucket."""


class SourceError(DataMoverError):
    """The source side of a transfer refused a request (unknown table, missing object, ...)."""


class TransferError(DataMoverError):
    """Data did not arrive intact (size or checksum mismatch, aborted upload)."""
