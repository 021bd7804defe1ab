"""face_recognition on the LFW pairs, run the way its users run it.

Each photo: `face_locations` (HOG, defaults), the face nearest the centre,
`face_encodings` (defaults), Euclidean distance. Reports accuracy at its
documented 0.6 tolerance, 10-fold accuracy with the threshold chosen on the
other nine folds, TAR at FAR=1e-3, photos with no face, and ms per photo.
Prints one JSON object.
"""
import argparse
import json
import multiprocessing
import os
import time

import numpy as np


def read_pairs(path, root):
    lines = [l.split() for l in open(path) if l.strip()]
    header, rows = lines[0], lines[1:]
    folds, n = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    img = lambda name, i: os.path.join(root, name, f"{name}_{int(i):04d}.jpg")
    pairs = []
    for k, r in enumerate(rows):
        fold = k // (2 * n)
        if len(r) == 3:
            pairs.append((img(r[0], r[1]), img(r[0], r[2]), True, fold))
        else:
            pairs.append((img(r[0], r[1]), img(r[2], r[3]), False, fold))
    return pairs


def encode(path):
    import face_recognition
    t = time.perf_counter()
    image = face_recognition.load_image_file(path)
    boxes = face_recognition.face_locations(image)
    if not boxes:
        return path, None, time.perf_counter() - t
    h, w = image.shape[:2]
    centre = lambda b: ((b[1] + b[3]) / 2 - w / 2) ** 2 + ((b[0] + b[2]) / 2 - h / 2) ** 2
    box = min(boxes, key=centre)
    enc = face_recognition.face_encodings(image, [box])[0]
    return path, enc, time.perf_counter() - t


def best_threshold(d, same):
    cands = np.unique(d)
    accs = [((d <= t) == same).mean() for t in cands]
    return cands[int(np.argmax(accs))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    args = ap.parse_args()
    pairs = read_pairs(args.pairs or os.path.join(args.data, "pairs.txt"), args.data)
    images = sorted({p for a, b, _, _ in pairs for p in (a, b)})
    start = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        results = pool.map(encode, images, chunksize=16)
    wall = time.perf_counter() - start
    enc = {p: e for p, e, _ in results}
    d = np.array([np.linalg.norm(enc[a] - enc[b]) if enc[a] is not None and enc[b] is not None else 10.0
                  for a, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    fold = np.array([f for _, _, _, f in pairs])
    accs = []
    for k in range(fold.max() + 1):
        train = fold != k if fold.max() > 0 else fold == k
        t = best_threshold(d[train], same[train])
        accs.append(((d[fold == k] <= t) == same[fold == k]).mean())
    impostor = np.sort(d[~same])
    allowed = int(np.floor(1e-3 * len(impostor)))
    t_far = impostor[allowed] if allowed < len(impostor) else np.inf
    tar = (d[same] < t_far).mean()
    print(json.dumps({
        "model": "face_recognition (dlib HOG + ResNet)",
        "accuracy_at_0.6": float(((d <= 0.6) == same).mean()),
        "mean_accuracy": float(np.mean(accs)), "std_accuracy": float(np.std(accs)),
        "tar_at_far_1e3": float(tar),
        "images_without_face": int(sum(e is None for e in enc.values())),
        "ms_per_image": 1e3 * sum(t for _, _, t in results) / len(results),
        "wall_seconds": wall,
    }))


if __name__ == "__main__":
    main()
