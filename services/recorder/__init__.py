"""The recorder stage: results stream -> history database, exactly once.

`maskwatch recorder --config cameras.yaml` (one or more replicas). It reads `maskwatch:results` after the
position stored in the database and writes, per batch and in ONE database transaction: the person records
(thumbnails apart), line crossings, alerts, the hourly and daily counts they add to, and the new stream
position. A crash or kill -9 at any point, a Redis restart or a database restart therefore loses and
duplicates nothing: the next run reads again after the stored position. Several replicas are safe: the
same transaction holds a lease row (`recorder_state.owner`), and only its holder writes; the others wait
and take over within `history.lease_ttl_s` when it stops renewing. The stream keeps `detector.results_maxlen`
entries (10,000): if the recorder is behind more than that (a long database outage), the entries trimmed
meanwhile are lost; the recorder notices, logs it and records the gap (`recorder_gaps`, the history API's
`gaps`). Modules: `rows` (messages -> rows), `writer` (the transaction), `pruning` (retention),
`service` (the loop), `cli` (`maskwatch recorder`, `maskwatch db upgrade`).
"""
