"""The one settings object. Every ``ADQ_*`` environment variable is a field here, and no product code reads one from
os.environ (child processes are handed a copy of the environment; Flower is given its own FLOWER_* variable)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adq.core import process
from adq.core.constants import ENV_PREFIX


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    # Embedded defaults keep everything under this folder, so `adq demo` needs no server.
    home: Path = Field(Path(".adq"), description="Folder for the embedded broker, database, images and models.")
    broker_url: str = Field("", description="Celery broker; empty means kombu's filesystem transport under home.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite under home.")
    storage_url: str = Field("", description="s3://bucket/prefix or file:///path; empty means file:// under home.")
    s3_endpoint_url: str | None = Field(None, description="Endpoint of an S3-compatible server.")
    s3_region: str = Field("us-east-1", description="Region the S3 client signs for.")
    presign_expiry_s: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="Lifetime of the presigned image links a job view carries."
    )

    preset: str = Field("tiny", description="Default preset for submitted jobs (`adq demo` runs shapes).")
    presets_file: str = Field(
        "",
        description="YAML files of your own presets, separated like PATH; each adds presets or overrides "
        "built-in ones of the same name. Checked at start-up: `adq presets --check FILE`.",
    )
    preset_groups: str = Field(
        "",
        pattern=r"^\s*([A-Za-z0-9_.-]+=[a-z0-9][a-z0-9-]{0,39}\s*(,\s*[A-Za-z0-9_.-]+=[a-z0-9][a-z0-9-]{0,39}\s*)*)?$",
        description="Queue groups for presets, as preset=group,preset=group (over each preset's own group field): "
        "a group's jobs wait in student.<group> and teacher.<group>, for workers started with --presets.",
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N; fp16 on CUDA, fp32 on CPU.")
    torch_threads: int = Field(0, ge=0, description="CPU threads per worker process; 0 leaves torch's default.")
    data_dir: Path | None = Field(
        None,
        description="Folder of run-time data (percentiles, prompt sets, shapes weights, the autoscale policy); "
        "empty means the data installed with the package.",
    )
    model_dir: Path | None = Field(None, description="Folder holding local copies of hub weights as <org>/<name>.")
    allow_downloads: bool = Field(False, description="Let workers download missing weights from the hub.")
    model_memory_bytes: ByteSize | None = Field(
        None,
        description="Bytes of models one worker process keeps loaded (8GiB, 24000000000); least recently used ones "
        "are evicted to stay within it. Unset: 90% of the CUDA device's memory, or half the RAM; 0: no budget.",
    )
    warm_up: Literal["before_ready", "background"] = Field(
        "before_ready",
        description="How a worker warms its presets' models: before_ready (it consumes, and reports ready, only "
        "after loading them and one run per role and size) or background (loaded while it connects; no run).",
    )
    compile: bool = Field(
        False,
        description="torch.compile each served preset's denoiser at start-up, warmed at every size the preset "
        "lists (its sizes field), so no request pays a compile; other sizes are refused.",
    )
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto",
        description="Precision of every model on CUDA that its preset does not set: auto gives bfloat16 to FLUX, "
        "SD3 and Z-Image and float16 to SD1.5 and SDXL; float16 is refused for a family that overflows in it. The "
        "CPU always runs float32.",
    )
    imagereward_checkpoint: str = Field("ImageReward-v1.0", description="ImageReward name or checkpoint path.")
    imagereward_med_config: str | None = Field(None, description="Path to ImageReward's med_config.json.")
    imagereward_tokenizer: str = Field("bert-base-uncased", description="BERT tokenizer id or local folder.")

    # The null preset's models cost nothing unless told to: fixed-cost stand-ins for GPU time in benchmarks.
    null_student_ms: float = Field(0.0, ge=0, description="Milliseconds the null student spends per image.")
    null_teacher_ms: float = Field(0.0, ge=0, description="Milliseconds the null teacher spends per image.")
    null_student_curve: str | None = Field(
        None,
        description="A shipped batch curve (data/batch_curves.json) the null student spends instead: a + c·b "
        "seconds for a batch of b images.",
    )
    null_student_side: int = Field(0, ge=0, le=4096, description="Textured null student images this side; 0: flat.")
    null_teacher_side: int = Field(0, ge=0, le=4096, description="Textured null teacher images this side; 0: flat.")

    # Keeping the model busy (docs/benchmarks.md, "Efficiency"). overlapped: task threads do the I/O (claim, encode,
    # upload, record) of some jobs while one model thread runs another's; serial: one job at a time, as before.
    worker_design: Literal["overlapped", "serial"] = Field("overlapped", description="overlapped or serial.")
    worker_threads: int = Field(
        0, ge=0, le=64, description="Jobs in flight per worker process (overlapped); 0: the pool's default."
    )
    score_batch_max: int = Field(8, ge=1, le=256, description="Most ready images scored in one estimator call.")
    student_batch_max: int | None = Field(
        None, ge=1, le=64, description="Most same-settings jobs in one student call; unset: the preset's batch.student."
    )
    teacher_batch_max: int | None = Field(
        None, ge=1, le=64, description="Most same-settings jobs in one teacher call; unset: the preset's batch.teacher."
    )
    deterministic: bool = Field(
        False, description="Run every job alone (batch 1): bit-identical replays, at batching's throughput cost."
    )
    batch_wait_ms: float = Field(
        100.0,
        ge=0,
        le=1000,
        description="Longest a forming student or teacher batch waits for compatible jobs this worker has already "
        "claimed; with none claimed it never waits.",
    )
    png_compress_level: int = Field(1, ge=0, le=9, description="zlib level of stored PNGs (lossless at any level).")

    # Supervisors (adq up, adq demo, the benchmarks) restart a child that exits unexpectedly, as systemd and
    # Kubernetes do, and give up only on a crash loop.
    restart_limit: int = Field(
        5, ge=0, description="Restarts of one child a supervisor allows within ADQ_RESTART_WINDOW_S before it stops."
    )
    restart_window_s: float = Field(60.0, gt=0, description="The window in which ADQ_RESTART_LIMIT counts restarts.")
    restart_backoff_max_s: float = Field(
        30.0, gt=0, description="Longest wait before a restart (0.5 s, doubled per recent crash)."
    )

    liveness_interval_s: float = Field(
        10.0, gt=0, description="How often a consuming worker marks itself alive for `adq alive` (the k8s probe)."
    )

    # Timeouts that end every wait on a silent network (docs/operations.md, "Timeouts"): a connection attempt, a
    # statement, and a peer that stopped answering (TCP keepalive, about 25 s) all end in an error that is retried.
    connect_timeout_s: float = Field(5.0, gt=0, description="Longest wait to connect to PostgreSQL or the broker.")
    statement_timeout_s: float = Field(
        120.0, ge=0, description="PostgreSQL cancels a statement that runs longer than this; 0: no limit."
    )

    # Reliability. The Redis broker redelivers an unacked message after visibility_timeout, so it must exceed
    # every hard time limit, or a long task would run twice.
    student_time_limit_s: int = Field(300, ge=1, description="Hard time limit of a student stage (soft: 10 s less).")
    teacher_time_limit_s: int = Field(900, ge=1, description="Hard time limit of a teacher stage (soft: 10 s less).")
    visibility_timeout_s: int = Field(
        3600, ge=2, description="Redis redelivers an unacknowledged message after this; must exceed both hard limits."
    )
    unacked_restore_interval_s: int = Field(10, ge=1, description="How often Redis workers look for lost messages.")
    amqp_queue_type: Literal["quorum", "classic"] = Field(
        "quorum",
        description="RabbitMQ queues: quorum (replicated with Raft, first in first out: RabbitMQ 3.x quorum queues "
        "have no priorities) or classic (one node's durable queues, with the priority and fair-share steps).",
    )
    sentinel_master: str = Field("mymaster", description="The master's name at the Sentinels of a sentinel:// URL.")
    max_attempts: int = Field(3, ge=1, le=100, description="Crashed claims per stage before the job fails.")
    retry_backoff_s: float = Field(2.0, gt=0, description="Base of the exponential, fully jittered backoff.")
    retry_backoff_max_s: float = Field(120.0, gt=0, description="Cap of one backoff countdown.")
    transient_retry_for_s: float = Field(
        1800.0,
        gt=0,
        description="How long a stage waits out an outage (storage, "
        "database, broker) before the job fails; transient retries never count "
        "against max_attempts.",
    )
    sweep_after_s: int = Field(600, ge=1, description="Re-enqueue jobs waiting longer than this.")
    outbox_after_s: int = Field(30, ge=0, description="The sweeper sends webhooks still owed this long after.")
    send_events: bool = Field(True, description="Workers send task events (Flower needs them).")
    otel_exporter: Literal["", "otlp", "console", "memory"] = Field(
        "", description="Tracing: empty is off; otlp sends to OTEL_EXPORTER_OTLP_ENDPOINT (adq.core.tracing)."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON lines elsewhere (adq.core.logs)."
    )

    # The control plane: live tau, effective k, and the controller (docs/control.md).
    tau_mode: Literal["live", "calibration"] = Field(
        "live",
        description="live: tau from the live student scores (a fixed budget); calibration: the calibrated "
        "tau (a fixed quality bar, the budget floats).",
    )
    live_tau_min_scores: int = Field(50, ge=1, description="Live scores needed before live tau replaces the prior.")
    live_tau_window_s: int = Field(900, ge=10, description="Window of the live score distribution.")
    live_flush_s: float = Field(1.0, gt=0, description="How often a worker shares its scores with the others.")
    live_key_max_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Most weight one API key has in the pooled live scores and the controller's requested k.",
    )
    control_policy: Literal["fixed", "slo", "fill"] = Field("fixed", description="The controller's policy.")
    control_interval_s: float = Field(2.0, gt=0, description="How often the controller re-solves effective k.")
    control_stale_s: float = Field(15.0, gt=0, description="Older published values are ignored: job k is used.")
    control_redis_url: str = Field("", description="Redis for the controller's lock and value; empty: the broker's.")
    teacher_p95_target_s: float = Field(30.0, gt=0, description="p95 target for teacher-routed jobs (slo policy).")
    teacher_time_s: float = Field(4.0, gt=0, description="Teacher service time assumed until jobs measure it.")

    # HTTP gateway, webhooks, Flower.
    api_keys: str = Field(
        "",
        description="Comma-separated name:sha256:DIGEST entries (`adq api-key NAME`), or name:key pairs and bare "
        "keys in development; empty disables auth.",
    )
    operator_keys: str = Field(
        "", description="Comma-separated key names that read every tenant's jobs (the console's operators)."
    )
    api_header_timeout_s: float = Field(
        10.0, gt=0, description="The gateway closes a connection whose request headers take longer than this."
    )
    api_max_connections: int = Field(
        1000, ge=1, description="Open connections and requests per gateway process; over it: 503."
    )
    ops_token: str = Field(
        "",
        description="Bearer token for /metrics, /v1/queues, /v1/control and the OpenAPI document (Prometheus, KEDA); "
        "operator keys work too. Empty and no API keys: those endpoints are open (development).",
    )
    webhook_secret: str = Field("", description="HMAC-SHA256 key for webhook signatures; webhooks need it.")
    webhook_allow_private: bool = Field(
        False, description="Allow webhooks to hosts that are not public (and to any port): development only."
    )
    webhook_ports: str = Field("443,80,8443", description="Comma-separated ports webhook URLs may name.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook delivery attempt.")
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Delivery attempts before a webhook gives up.")
    # The API for web backends (docs/http-api.md).
    rate_limit: str = Field(
        "600/minute",
        description="Per API key, in the limits library's notation (20/second); empty: off. Auth off: no limit.",
    )
    key_entitlements: str = Field(
        "",
        description='JSON by key name ("default" for the rest): presets, max_priority, max_k, max_teacher_steps, '
        "rate_limit. Unnamed keys: normal priority at most, k up to 100, 50 teacher steps (docs/http-api.md).",
    )
    operator_rate_limit: str = Field(
        "6000/minute", description="An operator key's rate limit (higher than a tenant's); empty: off."
    )
    rate_limit_storage_url: str = Field("", description="Where rate-limit counters live; empty: the broker's Redis.")
    fair_share_jobs: int = Field(20, ge=0, description="Unfinished jobs past which a key's new jobs queue behind.")
    max_batch: int = Field(100, ge=1, le=10000, description="Most prompts in one POST /v1/batches.")
    result_ttl_s: int = Field(7 * 24 * 3600, ge=0, description="Seconds finished jobs keep images; 0 keeps them.")
    upload_ttl_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="Seconds an input image that no unexpired job uses is kept after it was last sent; 0 keeps it.",
    )
    events_poll_s: float = Field(0.5, gt=0, le=10, description="How often an event stream looks for new events.")
    max_streams_per_key: int = Field(8, ge=1, description="Open event streams per API key, per gateway process.")
    stream_lifetime_s: float = Field(
        3600.0, gt=0, description="An event stream ends after this; clients resume with Last-Event-ID."
    )
    max_wait_s: float = Field(
        60.0,
        ge=0,
        le=60,
        description="The longest `Prefer: wait` a submit is held; a longer one is cut to this (Preference-Applied "
        "says so).",
    )
    api_insecure: bool = Field(False, description="Let `adq api` serve a non-loopback address with no API keys.")
    api_url: str = Field("", description="The CLI talks to this gateway over HTTP instead of the database.")
    api_key: str = Field("", description="The bearer key the CLI sends to ADQ_API_URL.")
    flower_user: str = Field("admin", description="Flower basic-auth user.")
    flower_password: str = Field("", description="Flower basic-auth password; empty refuses to start Flower.")
    flower_broker_api: str = Field(
        "", description="RabbitMQ's management API URL (http://user:pass@host:15672/api/) for Flower's Broker tab."
    )
    metrics_window_s: int = Field(3600, ge=60, description="Window of the rolling teacher-fraction gauge.")

    # Input bounds.
    max_body_bytes: int = Field(
        3_145_728,
        ge=1024,
        description="Largest JSON request body the gateway reads (room for two 1 MB data URIs); larger: 413 unread.",
    )
    max_input_bytes: int = Field(
        20_000_000, ge=1024, description="Largest input image (an upload, a fetched URL); larger ones answer 413."
    )
    max_input_pixels: int = Field(
        16_777_216, ge=64, description="Most pixels an input image may have (4096 x 4096), checked before decoding."
    )
    input_fetch_timeout_s: float = Field(
        10.0, gt=0, description="Most seconds fetching one input image URL may take, the whole fetch (DNS included)."
    )
    input_fetches_max: int = Field(
        8, ge=1, description="Input image fetches in flight per gateway process; more answer 429 at once."
    )
    max_request_input_bytes: int = Field(
        100_000_000, ge=1024, description="Most input image bytes one request (a job or a whole batch) may bring."
    )
    input_fetches_per_key: int = Field(2, ge=1, description="Input image fetches in flight per API key and process.")
    input_allow_private: bool = Field(
        False, description="Let input image URLs name hosts that are not public, any port, http too: development only."
    )
    max_prompt_chars: int = Field(2000, ge=1, description="Longest prompt a job may carry.")
    max_steps: int = Field(200, ge=1, description="Most student or teacher denoising steps a job may ask for.")
    max_image_side: int = Field(4096, ge=8, description="Largest width or height a job may ask for.")

    @model_validator(mode="after")
    def _check_timeouts(self) -> Settings:
        longest = max(self.student_time_limit_s, self.teacher_time_limit_s)
        if self.visibility_timeout_s <= longest:
            raise ValueError(
                f"ADQ_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s} must exceed the longest hard time limit "
                f"({longest} s), or the broker redelivers tasks that are still running"
            )
        if self.retry_backoff_max_s >= self.visibility_timeout_s:
            raise ValueError("ADQ_RETRY_BACKOFF_MAX_S must stay below ADQ_VISIBILITY_TIMEOUT_S")
        return self

    # Derived values: computed, never stored, so there is one source of truth.
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.home_dir / "broker"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'adq.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.home_dir / "objects").as_uri()

    @property
    def effective_control_redis_url(self) -> str | None:
        if self.control_redis_url:
            return self.control_redis_url
        return self.effective_broker_url if self.broker_kind == "redis" else None

    @property
    def models_home(self) -> Path:
        return self.home_dir / "models"

    @property
    def broker_kind(self) -> Literal["filesystem", "redis", "amqp", "other"]:
        scheme = self.effective_broker_url.split("://", 1)[0]
        if scheme == "filesystem":
            return "filesystem"
        if scheme in ("amqp", "amqps", "pyamqp"):
            return "amqp"
        return "redis" if scheme in ("redis", "rediss", "sentinel") else "other"


def get_settings() -> Settings:
    """The process's settings, read from the environment once (adq.core.process holds them). A test that
    changes the environment calls ``adq.context.reset()``, which drops them with everything built from them."""
    return process.once(("settings",), Settings)
