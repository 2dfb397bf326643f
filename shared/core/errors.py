"""One error root with a few groups. Transient errors are retried by the tasks; every other AdqError fails fast."""


class AdqError(Exception):
    """Root of every error this project raises on purpose."""


class TransientError(AdqError):
    """Mixin: the operation may succeed if retried later (network blips, a restarting server)."""


class Interrupted(TransientError):
    """A stage met an outage after claiming the job. ``fence`` is the claim it still holds when it could not give
    it back (the database was out too), so the retry may take that claim over; None when it was released."""

    def __init__(self, message: str, fence: int | None = None):
        super().__init__(message)
        self.fence = fence


class InputError(AdqError, ValueError):
    """A request or setting is invalid; the message names the bad value."""


class InputTooLarge(InputError):
    """An input image over ADQ_MAX_INPUT_BYTES or ADQ_MAX_INPUT_PIXELS (413); the message names the field and limit."""


class UnsupportedMedia(InputError):
    """An input that is not an image of a supported format (415)."""


class CalibrationError(InputError):
    """No usable calibration for the requested student settings."""


class IdempotencyConflict(InputError):
    """The idempotency key was already used with different parameters."""


class JobNotFound(AdqError, LookupError):
    """No job has that id."""


class JobConflict(AdqError):
    """The job exists but is not in a state that allows this request."""


class NoImageYet(JobConflict):
    """The job has not produced the image asked for (yet)."""


class ImageWithheld(JobConflict):
    """The safety filter flagged the job's final image: it and the student image are not served."""


class PresetNotServed(JobConflict):
    """The preset has queues of its own (a group) and no live worker consumes them: the job would wait for ever."""


class JobNotRetryable(JobConflict):
    """Only a failed job can be retried."""


class JobFinished(JobConflict):
    """The job already finished, so it cannot be cancelled."""


class Cancelled(AdqError):
    """The job was cancelled while a stage ran it: the run stops at its next denoising step."""

    def __init__(self, message: str, steps_done: int | None = None):
        super().__init__(message)
        self.steps_done = steps_done


class ResultExpired(AdqError):
    """The job's images were deleted by retention (ADQ_RESULT_TTL_S); HTTP answers 410."""


class NotEntitled(AdqError):
    """The API key's entitlements (ADQ_KEY_ENTITLEMENTS) do not allow this preset, priority, k or teacher steps."""


class RateLimited(AdqError):
    """The API key is over ADQ_RATE_LIMIT; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageError(AdqError):
    """Reading or writing an image object failed."""


class StorageUnavailable(StorageError, TransientError):
    """The object store could not be reached or answered with a server error."""


class ObjectNotFound(StorageError, LookupError):
    """The object key does not exist."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached; the operation can be retried."""


class SchemaBehind(AdqError):
    """The database's schema is older than the code: `adq migrate` brings it up to date. Not retried."""


class ScoringError(AdqError):
    """The quality estimator could not score an image."""


class DataUnavailable(AdqError):
    """The package's run-time data cannot be read as files (a zipped install, or ADQ_DATA_DIR naming no folder)."""


class ModelError(AdqError):
    """A diffusion model or estimator failed to load or run."""


class ModelUnavailable(ModelError):
    """Weights are missing locally and downloads are off; the message says how to point at a local copy."""


class ModelTooLarge(ModelError):
    """A model needs more than the worker's whole model memory budget (ADQ_MODEL_MEMORY_BYTES): no eviction helps."""


class AttemptsExhausted(AdqError):
    """A stage crashed max_attempts times; the job has been marked failed."""


class WorkerDied(AdqError):
    """A worker process that a command supervises (demo, bench, ``adq up``) exited while it was still needed."""


class WebhookError(AdqError):
    """A webhook could not be delivered. ``status``: the receiver's HTTP status, when it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class WebhookUnavailable(WebhookError, TransientError):
    """The receiver timed out, was unreachable, or answered 429/5xx; delivery is retried."""
