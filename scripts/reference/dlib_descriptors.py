#!/usr/bin/env python3
"""Reference descriptors from dlib itself, for tests/dlib_parity.rs.

For every face dlib's frontal detector finds in the given photos, writes the
150x150 chip dlib aligns (get_face_chip with shape_predictor_5, padding 0.25)
as a PNG and dlib's raw descriptor of that chip (compute_face_descriptor, not
normalised) into OUT/descriptors.json. The two model files are read from the
face-recognition-models sdist that `faces models install` downloaded.

Usage: bash scripts/reference/env.sh scripts/reference/dlib_descriptors.py \
           --sdist face_recognition_models-0.3.0.tar.gz --out DIR PHOTO...
"""
import argparse
import json
import os
import sys

from dlib_models import load_models, load_rgb


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdist", required=True, help="face_recognition_models-0.3.0.tar.gz")
    ap.add_argument("--out", required=True, help="folder for descriptors.json and the chip PNGs")
    ap.add_argument("photos", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import dlib
    from PIL import Image
    import numpy as np

    detector, predictor, net = load_models(args.sdist)
    faces = []
    for photo in args.photos:
        img = load_rgb(photo)
        for j, rect in enumerate(detector(img, 1)):
            chip = dlib.get_face_chip(img, predictor(img, rect), size=150, padding=0.25)
            name = f"chip_{len(faces):03d}.png"
            Image.fromarray(np.asarray(chip)).save(os.path.join(args.out, name))
            descriptor = [float(v) for v in net.compute_face_descriptor(chip)]
            faces.append({"photo": photo, "face": j, "chip": name, "descriptor": descriptor})
    with open(os.path.join(args.out, "descriptors.json"), "w") as f:
        json.dump({"dlib": dlib.__version__, "faces": faces}, f)
    print(f"{len(faces)} faces from {len(args.photos)} photos", file=sys.stderr)


if __name__ == "__main__":
    main()
