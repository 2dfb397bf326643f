# One image for every role: api, student/teacher/webhook workers, sweeper, flower, migrate.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ADQ_HOME=/var/lib/adq
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY tasks ./tasks
COPY workers ./workers
COPY gateway ./gateway
COPY adaptive_diffusion.py ./
COPY data ./data
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 adq && mkdir -p /var/lib/adq /models \
    && chown adq /var/lib/adq
USER adq
# Exec form everywhere (compose and Kubernetes): the adq process is PID 1, so SIGTERM reaches Celery and means a
# warm shutdown.
CMD ["adq", "--help"]
