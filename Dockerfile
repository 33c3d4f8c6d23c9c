# The statusflow image: receiver, worker and dashboard share it, the command picks the process.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY receiver receiver
COPY streams streams
COPY schemas schemas
COPY devkit devkit
COPY dashboard dashboard
COPY statusflow_cli statusflow_cli
COPY statusflow_consumer statusflow_consumer
COPY notifier notifier
RUN pip install --no-cache-dir . && mkdir -p /var/lib/statusflow && chown nobody /var/lib/statusflow
USER nobody
