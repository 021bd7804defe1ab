"""Splits LFW into a gallery and probes for the identification benchmark.

    python3 lfw_split.py LFW_DIR OUT_DIR [--limit-people N]

The protocol (fixed):
- People are the sub-folders of LFW_DIR, sorted by folder name; each person's
  images (.jpg/.jpeg/.png) are sorted by file name.
- Every person with two or more images: the FIRST image is enrolled (the
  gallery) and the remaining images are mated probes (expected: that person).
- Every person with exactly one image: that image is a non-mated probe
  (expected: unknown).

Writes OUT_DIR/enrol.csv (header `path,subject`) and OUT_DIR/probes.csv
(header `path,subject,mated`, mated = 1 or 0), paths absolute. On full LFW:
5,749 people, 1,680 enrolled, 7,484 mated and 4,069 non-mated probes, all
13,233 images used once. `--limit-people N` keeps the first N people (for
development runs). Standard library only.
"""
import argparse
import csv
import os
import sys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def people(lfw_dir):
    """(subject, [absolute image paths sorted by file name]) for each folder, sorted by name."""
    root = os.path.abspath(lfw_dir)
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        images = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if images:
            yield name, [os.path.join(folder, f) for f in images]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lfw_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--limit-people", type=int, help="keep only the first N people (development)")
    args = ap.parse_args()

    everyone = list(people(args.lfw_dir))
    if args.limit_people:
        everyone = everyone[:args.limit_people]
    enrol, probes = [], []
    for subject, images in everyone:
        if len(images) >= 2:
            enrol.append((images[0], subject))
            probes.extend((path, subject, 1) for path in images[1:])
        else:
            probes.append((images[0], subject, 0))

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "enrol.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "subject"])
        w.writerows(enrol)
    with open(os.path.join(args.out_dir, "probes.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "subject", "mated"])
        w.writerows(probes)
    mated = sum(m for _, _, m in probes)
    print(f"{len(everyone)} people: {len(enrol)} enrolled, {mated} mated and "
          f"{len(probes) - mated} non-mated probes ({len(enrol) + len(probes)} images) -> {args.out_dir}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
