# The statusflow image: receiver and worker share it, the command picks the process.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY receiver receiver
COPY streams streams
COPY schemas schemas
COPY devkit devkit
RUN pip install --no-cache-dir .
USER nobody
