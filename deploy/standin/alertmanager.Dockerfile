# Stand-in for prom/alertmanager (deploy/test-compose.sh): Debian bookworm's Alertmanager, the official
# image's paths and default arguments.
FROM maskwatch-standin/bookworm:minbase
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus-alertmanager \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /alertmanager && chown nobody /alertmanager
USER 65534
WORKDIR /alertmanager
LABEL org.maskwatch.standin="prom/alertmanager"
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
