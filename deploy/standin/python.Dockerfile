# Stand-in for python:3.11-slim-bookworm where no registry can be reached (deploy/test-compose.sh):
# Debian bookworm's Python 3.11 with pip, installing into /usr/local like the official image.
FROM maskwatch-standin/bookworm:minbase
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip
LABEL org.maskwatch.standin="python:3.11-slim-bookworm"
CMD ["python3"]
