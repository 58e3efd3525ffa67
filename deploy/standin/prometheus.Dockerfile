# Stand-in for prom/prometheus (deploy/test-compose.sh): Debian bookworm's Prometheus, the official image's
# paths and default arguments.
FROM maskwatch-standin/bookworm:minbase
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown nobody /prometheus
USER 65534
WORKDIR /prometheus
LABEL org.maskwatch.standin="prom/prometheus"
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
