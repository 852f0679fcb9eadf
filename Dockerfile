# One image for every role of the dialer: worker, beat, webhook, API, migration, simulator.
# docker-compose.yml chooses the role with `command`; health checks live there too.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The user the processes run as; its home /app is the (empty) working directory.
RUN useradd --uid 10001 --user-group --create-home --home-dir /app dialer

WORKDIR /src

# Dependency layer: rebuilt only when pyproject.toml changes, not on every source edit.
# The requirements are read from pyproject.toml itself (build-system requires, so the
# project can be built without build isolation below, plus [project] dependencies).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (README.md is its long description, so setuptools needs it).
# --no-deps: everything it needs is in the layer above; pip check proves it.
COPY README.md ./
COPY worker ./worker
COPY webhook ./webhook
COPY simulator ./simulator
COPY api ./api
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf /src

# No source tree in the working directory: imports come from the installed package,
# and no .env is baked in (settings come from the environment at run time).
WORKDIR /app
USER dialer

EXPOSE 5000
CMD ["dialer", "--help"]
