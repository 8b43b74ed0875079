# syntax=docker/dockerfile:1
#
# Troy's production image: one image for every role, chosen by the command.
#   web (default)  gunicorn -c gunicorn.conf.py deployment_service.wsgi
#   worker         python manage.py rundramatiq --processes 2 --threads 4
#   scheduler      python manage.py scheduler
#   migrate        python manage.py migrate --noinput
# It needs DJANGO_SECRET_KEY at run time (it refuses to start without it), DATABASE_URL, DRAMATIQ_BROKER_URL and AWS settings; see compose.yaml and docs/settings.md.
# Only requirements.txt goes in: the test tools (moto, pytest) stay out of the image.

ARG PYTHON_VERSION=3.11

# --- builder: wheels for every production dependency ----------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
# requirements.txt pins every package with its hashes; a download that does not match fails the build.
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements.txt

# --- runtime ----------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=deployment_service.settings \
    TROY_MANIFEST_STATIC=1 \
    TROY_DATA_DIR=/data

RUN groupadd --system --gid 10001 troy \
    && useradd --system --uid 10001 --gid troy --home-dir /app --no-create-home --shell /usr/sbin/nologin troy \
    && install -d -o troy -g troy -m 0750 /data /data/uploads

# Installed from the builder's wheels only (no index, no compiler); the wheels are bound for
# this step and never become a layer of the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --no-cache-dir --no-index --find-links=/wheels --require-hashes -r /tmp/requirements.txt

WORKDIR /app
# The code stays owned by root: the service user can read it, not change it.
COPY . .
# Static files (admin, API docs) hashed and compressed for WhiteNoise. The key only lets settings
# load at build time; it is not in the image's environment.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --noinput --verbosity 0

USER troy
EXPOSE 8000
VOLUME ["/data"]

# Liveness of the web role; /healthz answers without touching the database or the broker. The
# Host header is the first of DJANGO_ALLOWED_HOSTS, so the probe passes host validation.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; h = os.environ.get('DJANGO_ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.').replace('*', 'localhost') or 'localhost'; r.urlopen(r.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=4)"]

# gunicorn.conf.py: threaded workers and timeouts chosen for slow clients and large uploads.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "deployment_service.wsgi"]
