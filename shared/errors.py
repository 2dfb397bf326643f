"""One error root with a few groups. Transient errors are retried by the tasks; every other AdqError fails fast."""


class AdqError(Exception):
    """Root of every error this project raises on purpose."""


class TransientError(AdqError):
    """Mixin: the operation may succeed if retried later (network blips, a restarting server)."""


class InputError(AdqError, ValueError):
    """A request or setting is invalid; the message names the bad value."""


class CalibrationError(InputError):
    """No usable calibration for the requested student settings."""


class IdempotencyConflict(InputError):
    """The idempotency key was already used with different parameters."""


class JobNotFound(AdqError, LookupError):
    """No job has that id."""


class StorageError(AdqError):
    """Reading or writing an image object failed."""


class StorageUnavailable(StorageError, TransientError):
    """The object store could not be reached or answered with a server error."""


class ObjectNotFound(StorageError, LookupError):
    """The object key does not exist."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached; the operation can be retried."""


class ScoringError(AdqError):
    """The quality estimator could not score an image."""


class ModelError(AdqError):
    """A diffusion model or estimator failed to load or run."""


class ModelUnavailable(ModelError):
    """Weights are missing locally and downloads are off; the message says how to point at a local copy."""


class AttemptsExhausted(AdqError):
    """A stage was claimed max_attempts times; the job has been marked failed."""


class WebhookError(AdqError):
    """A webhook could not be delivered."""


class WebhookUnavailable(WebhookError, TransientError):
    """The receiver timed out, was unreachable, or answered 429/5xx; delivery is retried."""
