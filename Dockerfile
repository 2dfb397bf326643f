# One image for every role: api, student/teacher/webhook workers, sweeper, flower, migrate.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ADQ_HOME=/var/lib/adq
# The sources are only built from: the image runs the installed wheel (its data included), as `pip install` users do.
COPY pyproject.toml setup.py README.md adaptive_diffusion.py /src/
COPY shared /src/shared
COPY tasks /src/tasks
COPY workers /src/workers
COPY gateway /src/gateway
COPY cli /src/cli
COPY data /src/data
RUN pip install --no-cache-dir /src && rm -rf /src && useradd --create-home --uid 10001 adq \
    && mkdir -p /var/lib/adq /models && chown adq /var/lib/adq
WORKDIR /var/lib/adq
USER adq
# Exec form everywhere (compose and Kubernetes): the adq process is PID 1, so SIGTERM reaches Celery and means a
# warm shutdown.
CMD ["adq", "--help"]
