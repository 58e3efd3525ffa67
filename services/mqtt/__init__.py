"""The MQTT bridge: counts, people and alerts on an MQTT broker, with Home Assistant discovery.

`maskwatch mqtt --config cameras.yaml` (run by `stack up`, compose and Kubernetes when the config has an
`mqtt:` section) reads the results stream like the dashboard does and publishes (services/mqtt/topics.py):

- `<prefix>/status`: "online" / "offline" (retained; "offline" is the last will);
- `<prefix>/<camera>/state`: retained JSON, at most every `state_interval` s and only when it changed;
  `<prefix>/<camera>/zone/<zone>/state` and `.../line/<line>/state` the same per zone and counting line;
- `<prefix>/<camera>/events`: JSON of each person record (static faces left out), crossing and alert;
- `<prefix>/<camera>/thumbnail`: the face thumbnail of each person (JPEG bytes), when `thumbnails` is on;
- `<discovery_prefix>/<component>/maskwatch_<camera>/<object>/config`: Home Assistant discovery;
- with `commands` (and a login): `<prefix>/<camera>/set`, `.../enabled/set`, `.../alerts/set` turn the
  camera's switches in Redis (shared/overrides.py), which capture and the tracker obey.

The broker never slows the pipeline: the bridge is its own process, publishing never blocks it, and
while the broker is away state is kept (the latest is sent when it is back) and events wait in a
bounded queue (`outage_queue`, older ones counted as dropped).
"""
