# syntax=docker/dockerfile:1
# Production image: stubs generated at build, no compilers or build tools at run time, non-root.
# The base image is pinned to an exact release; to pin its digest too, append the one `docker pull` prints:
#   FROM python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Exact versions with hashes from the lock files (make lock): nothing is resolved while building.
COPY requirements ./requirements
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/codegen.lock \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY service ./service
# The service's own wheel, built with the locked setuptools of the tools environment.
RUN /opt/tools/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/wheel . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheel/*.whl
COPY proto ./proto
COPY third_party ./third_party
RUN mkdir -p /gen/invoices/v1 \
 && /opt/tools/bin/python -m grpc_tools.protoc -Iproto -Ithird_party/googleapis \
      --python_out=/gen --grpc_python_out=/gen proto/invoices/v1/*.proto \
 && /opt/tools/bin/python -m grpc_tools.protoc -Iproto -Ithird_party/googleapis --include_source_info \
      --descriptor_set_out=/gen/invoices/v1/descriptor_set.binpb proto/invoices/v1/*.proto \
 && touch /gen/invoices/__init__.py /gen/invoices/v1/__init__.py

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /gen /app/gen
WORKDIR /app
# Configuration is environment only; DATABASE_URL must point at PostgreSQL (no embedded server here).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/gen \
    PYTHONUNBUFFERED=1 \
    LISTEN_ADDR=0.0.0.0:50051
USER app
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "service.healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "service"]
