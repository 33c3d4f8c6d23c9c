# The statusflow image: receiver, worker and dashboard share it, the command picks the process.
FROM python:3.11-slim
WORKDIR /app
# Every dependency from the lock (exact versions, checked hashes: docs/dependencies.md), in a layer
# that a change of our code does not rebuild; then the project on top, resolving nothing again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY receiver receiver
COPY streams streams
COPY schemas schemas
COPY devkit devkit
COPY dashboard dashboard
COPY statusflow_cli statusflow_cli
COPY statusflow_consumer statusflow_consumer
COPY notifier notifier
RUN pip install --no-cache-dir --no-deps . && mkdir -p /var/lib/statusflow && chown nobody /var/lib/statusflow
USER nobody
