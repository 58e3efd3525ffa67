"""`maskwatch mqtt`: the MQTT bridge (Home Assistant discovery, retained state, events)."""

from __future__ import annotations

import argparse
import logging

from services.cli import add_service_arguments
from shared.exit_codes import USAGE, fail

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the mqtt subcommand."""
    mqtt = sub.add_parser("mqtt", help="publish counts, people and alerts on MQTT (config section mqtt:)")
    add_service_arguments(mqtt, "cameras.yaml with an mqtt: section", required=True)
    mqtt.set_defaults(func=run_mqtt)


def run_mqtt(args: argparse.Namespace) -> int:
    """`maskwatch mqtt`."""
    import redis.asyncio as aioredis

    from services.cli import _config
    from services.lifecycle import stop_on_signals
    from services.mqtt.bridge import MqttBridge
    from services.mqtt.publisher import MqttPublisher
    from services.mqtt.topics import Topics
    from shared.mqtt_config import MqttSettingsError, credentials
    from shared.redis_connection import client_kwargs
    from shared.streams import connect

    config = _config(args)
    if config is None:
        return USAGE
    if config.mqtt is None:
        return fail(f"{args.config}: no mqtt: section (see docs/mqtt.md)", USAGE)
    try:
        creds = credentials(config.mqtt)
    except MqttSettingsError as exc:
        return fail(str(exc), USAGE)
    if config.mqtt.commands and not creds.authenticated:
        return fail("mqtt.commands needs mqtt.username and a password (password_file or "
                    "MASKWATCH_MQTT_PASSWORD): commands are accepted only on an authenticated connection", USAGE)
    stop = stop_on_signals()
    topics = Topics(config.mqtt.topic_prefix, config.mqtt.discovery_prefix)
    redis = aioredis.Redis.from_url(config.redis_url, client_name="mqtt",
                                    **client_kwargs(config.redis_url, config.redis))
    publisher = MqttPublisher(config.mqtt, creds, topics.availability)
    commands = connect(config.redis_url, name="mqtt-commands", options=config.redis) if config.mqtt.commands else None
    return MqttBridge(config, redis, publisher, topics, commands).run(stop)
