"""Names shared with infrastructure: compose, Kubernetes and KEDA files are tested against these."""

STUDENT_QUEUE = "student"
TEACHER_QUEUE = "teacher"
WEBHOOK_QUEUE = "webhooks"
QUEUES = (STUDENT_QUEUE, TEACHER_QUEUE, WEBHOOK_QUEUE)

STUDENT_TASK = "adq.student"
TEACHER_TASK = "adq.teacher"
WEBHOOK_TASK = "adq.webhook"
NOOP_TASK = "adq.noop"  # used only by the overhead benchmark as the raw-Celery baseline

# Celery names the Redis list of a queue after the queue; unacked messages sit in this hash instead,
# so KEDA's list-length trigger sees waiting work only.
REDIS_UNACKED_KEY = "unacked"
REDIS_UNACKED_INDEX_KEY = "unacked_index"  # delivery tag -> when it was delivered (kombu's sorted set)

# Object keys: "<storage prefix>/jobs/<job id>/<stage>.png". Fixed per job and stage, so a stage that runs twice
# overwrites its own object instead of leaving a second one.
JOB_KEY_PREFIX = "jobs"
STUDENT_IMAGE = "student.png"
FINAL_IMAGE = "final.png"

ENV_PREFIX = "ADQ_"


def task_id(job_id: str, stage: str) -> str:
    """Task ids are derived from the job and stage, so a duplicate message is recognisable in logs and Flower."""
    return f"{job_id}:{stage}"
