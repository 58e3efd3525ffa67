#!/bin/sh
# The shipped classifier's recipe (docs/training.md) as one job: the seeded held-out photo list, face crops of
# every class cut from the other scene photos (the only mask_incorrect data), then `maskwatch train` on the
# face sets plus those crops. The new version is written to the model store and not promoted.
# Extra arguments go to `maskwatch train` and win over the recipe's (e.g. --finetune-epochs 4, --promote).
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

# Crops depend on the detector that finds the faces, so each detector version gets its own folder.
DETECTOR="$(cat "$MODELS/detector/CURRENT")"
CROPS="$CACHE/ilc2021-train-crops-$DETECTOR"
if [ ! -d "$CROPS" ]; then
    rm -rf "$CROPS.partial"
    maskwatch dataset crops "$SCENES" "$CROPS.partial" --models "$MODELS" \
        --exclude "$CACHE/ilc2021_val.txt" --detections --background 2
    mv "$CROPS.partial" "$CROPS"
fi

exec maskwatch train "$DATA/faces/fm12k" "$DATA/faces/chandrikadeb7" "$CROPS" --out "$MODELS" \
    --input-size 160 --views 3 --dedup-distance 6 --cache "$CACHE" "$@"
