#!/bin/sh
# The shipped classifier's recipe (docs/training.md) as one job: the seeded held-out photo list, face crops of
# every class cut from the other scene photos (the only mask_incorrect data; labels corrected by
# training/labels/ilc2021_corrections.csv), then `maskwatch train` on the face sets plus those crops, plus
# any folders named in MASKWATCH_EXTRA_ROOTS (space-separated, e.g. the output of `maskwatch review export`).
# The new version is promoted only if it beats the promoted one on the held-out photos (--promote-if-better).
# Extra arguments go to `maskwatch train` and win over the recipe's (e.g. --finetune-epochs 4).
# Paths: MASKWATCH_DATA_DIR (../shared/data layout, default /data), MASKWATCH_CACHE (crops and features,
# default /cache), MASKWATCH_MODELS (the model store, default /models).
set -eu

DATA="${MASKWATCH_DATA_DIR:-/data}"
CACHE="${MASKWATCH_CACHE:-/cache}"
MODELS="${MASKWATCH_MODELS:-/models}"
SCENES="$DATA/scenes/ilc2021"

mkdir -p "$CACHE"
maskwatch dataset heldout "$SCENES" > "$CACHE/ilc2021_val.txt"
echo "held-out photos (never cropped): $(wc -l < "$CACHE/ilc2021_val.txt") listed in $CACHE/ilc2021_val.txt"

# Crops depend on the detector that finds the faces and on the label corrections, so each detector version
# and corrections file gets its own folder.
DETECTOR="$(cat "$MODELS/detector/CURRENT")"
LABELS_ID="$(python -c 'import hashlib, training.corrections as c; p = c.default_corrections("ilc2021")
print(hashlib.sha256(p.read_bytes()).hexdigest()[:8] if p else "none")')"
CROPS="$CACHE/ilc2021-train-crops-$DETECTOR-labels-$LABELS_ID"
if [ ! -d "$CROPS" ]; then
    rm -rf "$CROPS.partial"
    maskwatch dataset crops "$SCENES" "$CROPS.partial" --models "$MODELS" \
        --exclude "$CACHE/ilc2021_val.txt" --detections --background 2
    mv "$CROPS.partial" "$CROPS"
fi

# shellcheck disable=SC2086  # MASKWATCH_EXTRA_ROOTS is a list of folders
exec maskwatch train "$DATA/faces/fm12k" "$DATA/faces/chandrikadeb7" "$CROPS" ${MASKWATCH_EXTRA_ROOTS:-} \
    --out "$MODELS" --input-size 160 --views 3 --dedup-distance 6 --cache "$CACHE" \
    --promote-if-better --val-scenes "$SCENES" --val-photos "$CACHE/ilc2021_val.txt" "$@"
