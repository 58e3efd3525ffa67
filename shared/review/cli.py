"""`maskwatch review export | import`: labelled faces out as training data, annotated photos in for review."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from shared.config import DEFAULT_REDIS_URL, REDIS_URL_ENV


def register(sub: argparse._SubParsersAction) -> None:
    """Add `maskwatch review` and its actions."""
    p = sub.add_parser("review", help="the review queue: export labelled faces, import annotated photos")
    rsub = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    e = rsub.add_parser("export", help="write labelled faces as OUT_DIR/<label>/*.jpg with manifest.csv and "
                        "remove them from the queue (maskwatch train takes OUT_DIR as a root)")
    e.add_argument("out_dir")
    e.add_argument("--corrections", metavar="CSV", help="also append imported faces whose label was changed "
                   "as label corrections (e.g. training/labels/ilc2021_corrections.csv)")
    _redis_args(e)
    e.set_defaults(func=_export)
    i = rsub.add_parser("import", help="queue the labelled faces of a VOC folder for review")
    i.add_argument("voc_dir")
    i.add_argument("--photos", metavar="LIST", help="only these photo stems (one a line)")
    i.add_argument("--labels", metavar="L1,L2", help="only faces annotated with these labels")
    i.add_argument("--original-labels", action="store_true", help="ignore the committed label corrections")
    i.add_argument("--models", metavar="DIR", help="model store whose promoted classifier gives its opinion")
    _redis_args(i)
    i.set_defaults(func=_import)


def _redis_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="camera file (its redis_url and review: settings)")
    p.add_argument("--redis", metavar="URL", help=f"Redis URL (default: the config's, ${REDIS_URL_ENV} or "
                   f"{DEFAULT_REDIS_URL})")


def _queue(args: argparse.Namespace):
    import redis

    from shared.config import load_config
    from shared.review.config import ReviewConfig
    from shared.review.queue import ReviewQueue

    config = load_config(args.config) if args.config else None
    url = args.redis or (config.redis_url if config else os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL))
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30)
    return ReviewQueue(client, config.review if config else ReviewConfig())


def _export(args: argparse.Namespace) -> int:
    import redis

    from shared.config import ConfigError
    from shared.review.export import export_labelled, write_corrections
    from shared.streams import describe_redis_error

    try:
        items = export_labelled(_queue(args), args.out_dir)
        fixed = write_corrections(items, args.corrections) if args.corrections else 0
    except ConfigError as exc:
        return _fail(str(exc))
    except redis.RedisError as exc:
        return _fail(f"redis unavailable: {describe_redis_error(exc)}")
    except OSError as exc:
        return _fail(f"cannot write {exc.filename or args.out_dir}: {exc.strerror}")
    counts = Counter(i.label for i in items)
    print(f"{len(items)} labelled faces -> {args.out_dir}: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                                               or "none"))
    if args.corrections:
        print(f"{fixed} label corrections appended to {args.corrections}")
    return 0


def _import(args: argparse.Namespace) -> int:
    import redis

    from shared.classifier import FaceClassifier
    from shared.config import ConfigError
    from shared.model_store import ModelError, ModelStore
    from shared.review.export import import_photos
    from shared.streams import describe_redis_error
    from training.errors import TrainingError
    from training.splits import read_list
    from training.voc import load_voc

    try:
        photos = load_voc(args.voc_dir, stems=set(read_list(args.photos)) if args.photos else None,
                          original_labels=args.original_labels)
        classifier = FaceClassifier.from_version(ModelStore(args.models).load("classifier"), threads=2)
        labels = set(args.labels.split(",")) if args.labels else None
        n = import_photos(_queue(args), photos, classifier, f"import:{Path(args.voc_dir).name}", labels)
    except (ConfigError, ModelError, TrainingError) as exc:
        return _fail(str(exc))
    except redis.RedisError as exc:
        return _fail(f"redis unavailable: {describe_redis_error(exc)}")
    print(f"{n} faces of {len(photos)} photos queued for review")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
