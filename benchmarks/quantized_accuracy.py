"""Accuracy guard for quantized models on the held-out ilc2021 photos (issue 19).

    python benchmarks/quantized_accuracy.py [--float 20261202-0447-mnv2-160] [--int8 20261202-0447-mnv2-160-int8]

Runs `evaluate_scenes` (what `maskwatch eval VERSION --scenes ... --photos training/splits/ilc2021_val.txt`
reports) for: the float classifier, the int8 classifier, and the float classifier behind an int8 copy of
the detector (ONNX Runtime static quantization, QDQ, per-channel weights, calibrated on --detector-calibration
training photos, never held-out ones; written to a temporary store, not shipped). The guard: label accuracy
within 0.5 point and face AP within 0.005 of the float models. Writes benchmarks/results/quantize_heldout.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.classifier import FaceClassifier  # noqa: E402
from shared.detectors.base import resize_by  # noqa: E402
from shared.face_detector import RetinaFaceDetector  # noqa: E402
from shared.imaging import read_image  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from shared.pipeline import Pipeline  # noqa: E402
from training.evaluate import evaluate_scenes  # noqa: E402
from training.splits import read_list  # noqa: E402
from training.voc import load_voc  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
HELDOUT = REPO / "training" / "splits" / "ilc2021_val.txt"


def quantize_detector(detector: RetinaFaceDetector, source: Path, out: Path, photos: list) -> None:
    """ONNX Runtime static int8 quantization of a RetinaFace file, calibrated at serving scale on `photos`."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    input_name = onnx.load(str(source)).graph.input[0].name
    mean = np.asarray(detector.input_mean(), np.float32)

    class Reader(CalibrationDataReader):  # the file's own input: float NCHW, BGR minus the mean
        def __init__(self) -> None:
            self.photos = iter(photos)

        def get_next(self) -> dict | None:
            photo = next(self.photos, None)
            if photo is None:
                return None
            image = read_image(photo.image)
            h, w = image.shape[:2]
            padded = detector.network_input(resize_by(image, detector.scale_for(w, h))).astype(np.float32) - mean
            return {input_name: padded.transpose(0, 3, 1, 2).copy()}

    with tempfile.TemporaryDirectory() as tmp:
        opset13 = Path(tmp) / "opset13.onnx"  # per-channel quantization needs opset 13
        onnx.save(version_converter.convert_version(onnx.load(str(source)), 13), opset13)
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(opset13), str(prepared))
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def summary(report: dict) -> dict:
    labels = report["matched_faces"]
    return {"label_accuracy": labels["accuracy"], "matched_faces": labels.get("n"), "face_ap50": report["face_ap50"],
            "map50": report["map50"], "compliance_accuracy": report["compliance_accuracy"],
            "detector": report["detector"], "classifier": report["classifier"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--float", dest="float_version", default="20261202-0447-mnv2-160")
    parser.add_argument("--int8", dest="int8_version", default="20261202-0447-mnv2-160-int8")
    parser.add_argument("--detector", default="retinaface-masked-ilc2021-640")
    parser.add_argument("--detector-calibration", type=int, default=64, help="training photos")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quantize_heldout.json")
    args = parser.parse_args()
    if not SCENES.is_dir():
        print(f"error: {SCENES} not found", file=sys.stderr)
        return 2
    store = ModelStore(REPO / "models")
    heldout = set(read_list(HELDOUT))
    photos = load_voc(SCENES, stems=heldout)
    det_version = store.load("detector", args.detector)
    detector = RetinaFaceDetector.from_version(det_version, min_face=16)
    rows = {}
    for key, version in (("float", args.float_version), ("int8_classifier", args.int8_version)):
        classifier = FaceClassifier.from_version(store.load("classifier", version))
        rows[key] = summary(evaluate_scenes(Pipeline(detector, classifier), photos))
    training = load_voc(SCENES, exclude=heldout)
    random.Random(0).shuffle(training)
    with tempfile.TemporaryDirectory() as tmp:
        int8_file = Path(tmp) / "model.onnx"
        quantize_detector(detector, det_version.file(), int8_file, training[: args.detector_calibration])
        int8_detector = RetinaFaceDetector(int8_file, detector.spec, min_face=16, name=f"{det_version.name} int8")
        classifier = FaceClassifier.from_version(store.load("classifier", args.float_version))
        rows["int8_detector"] = summary(evaluate_scenes(Pipeline(int8_detector, classifier), photos))
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows["float"]
    for key in ("int8_classifier", "int8_detector"):
        row = rows[key]
        row["label_accuracy_change_points"] = round(100 * (row["label_accuracy"] - base["label_accuracy"]), 2)
        row["face_ap_change"] = round(row["face_ap50"] - base["face_ap50"], 4)
        row["guard_passed"] = bool(row["label_accuracy_change_points"] >= -0.5 and row["face_ap_change"] >= -0.005)
    report = {"benchmark": "quantized_accuracy", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "photos": len(photos), "guard": "label accuracy within 0.5 point, face AP within 0.005", "runs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
