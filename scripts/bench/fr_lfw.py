"""face_recognition on the LFW pairs, run the way its users run it.

Each photo: `face_locations` (HOG, defaults), the main face (largest and most
central, as `faces` picks it), `face_encodings` (defaults), Euclidean
distance. Encodings come from fr_identify.py's encoder and share its cache,
so the identification benchmark and this one encode each photo once.
Reports accuracy at its documented 0.6 tolerance, FMR and FNMR there with 95%
bootstrap intervals, 10-fold accuracy with the threshold chosen on the other
nine folds, TAR at FAR=1e-3, photos with no face, and ms per photo.
Prints one JSON object.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fr_identify import DEFAULT_CACHE, encode_all  # noqa: E402

TOLERANCE = 0.6
BOOTSTRAP = 2000


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


def rate(errors, trials, rng):
    """The observed rate and its 95% parametric bootstrap interval (binomial draws)."""
    value = errors / trials
    if errors == 0:
        return {"value": 0.0, "low": 0.0, "high": min(1.0, 3.0 / trials), "events": 0, "trials": int(trials)}
    draws = rng.binomial(trials, value, BOOTSTRAP) / trials
    return {"value": value, "low": float(np.percentile(draws, 2.5)), "high": float(np.percentile(draws, 97.5)),
            "events": int(errors), "trials": int(trials)}


def best_threshold(d, same):
    cands = np.unique(d)
    accs = [((d <= t) == same).mean() for t in cands]
    return cands[int(np.argmax(accs))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--cache", default=DEFAULT_CACHE, help=f"encoding cache (default {DEFAULT_CACHE})")
    args = ap.parse_args()
    pairs = read_pairs(args.pairs or os.path.join(args.data, "pairs.txt"), os.path.abspath(args.data))
    images = sorted({p for a, b, _, _ in pairs for p in (a, b)})
    entries, timing = encode_all(images, args.jobs, args.cache)
    enc = {p: entries[p][0] for p in images}
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
    rng = np.random.default_rng(0x5EED)
    fmr = rate(int((d[~same] <= TOLERANCE).sum()), int((~same).sum()), rng)
    fnmr = rate(int((d[same] > TOLERANCE).sum()), int(same.sum()), rng)
    print(json.dumps({
        "model": "face_recognition (dlib HOG + ResNet)",
        "accuracy_at_0.6": float(((d <= TOLERANCE) == same).mean()),
        "fmr_at_0.6": fmr, "fnmr_at_0.6": fnmr,
        "mean_accuracy": float(np.mean(accs)), "std_accuracy": float(np.std(accs)),
        "tar_at_far_1e3": float(tar),
        "images_without_face": int(sum(e is None for e in enc.values())),
        "ms_per_image": timing["mean_ms"]["cpu per image"],
        "images_per_second": timing["images_per_second"], "timing_from": timing["timing_from"],
    }))


if __name__ == "__main__":
    main()
