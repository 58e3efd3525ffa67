# Stand-in for redis:7-alpine (deploy/test-compose.sh): Debian bookworm's Redis 7.0. Like the official
# image, protected mode is off (the server is reached from other containers) and the data is in /data.
FROM maskwatch-standin/bookworm:minbase
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
LABEL org.maskwatch.standin="redis:7-alpine"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
