"""The review queue: faces worth a human look, from the cameras (or a VOC folder), labelled in the dashboard.

- `ReviewConfig` (config.py): the `review:` section of the camera file; off by default.
- `ReviewItem`, `ReviewQueue` (queue.py): the bounded queue in Redis (kept across restarts by Redis's
  append-only file), labelling, undo and removal after export.
- `ReviewSampler` (sampler.py): a tracker observer (`on_frame`, `on_person`) that picks at most one crop
  per person: low classifier confidence, split votes, labels that flip along the track, a sample per class.
"""
