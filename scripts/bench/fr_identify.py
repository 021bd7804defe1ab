"""face_recognition (dlib) on the LFW identification split, run the way its users run it.

    python fr_identify.py LFW_DIR SPLIT_DIR OUT_JSONL [--jobs N] [--cache NPZ] [--no-cache]

SPLIT_DIR holds enrol.csv and probes.csv from lfw_split.py. The protocol:
people sorted by folder name, each person's images by file name; for every
person with two or more images the first is enrolled and the rest are mated
probes; every person with one image is a non-mated probe.

Every image (enrolled and probes: on full LFW all 13,233, i.e. "enrolling all
of LFW") goes through `load_image_file`, `face_locations` (HOG, its defaults:
one upsampling) and `face_encodings` (default 5-point landmarks,
num_jitters=1). When an image has several faces, the one kept is the one
with the largest box area weighted by closeness to the image centre,
area * max(0, 1 - distance_to_centre / half_diagonal) (the rule our CLI uses
for the main face). Images are encoded in a multiprocessing Pool of --jobs
workers (default 1); the total wall time and images/s are for encoding ALL
images of the split.

Encodings are cached in ~/.cache/faces-bench/fr-lfw-encodings.npz keyed by
absolute path (checkpointed every 500 images, so an interrupted run
resumes); the cache also records the wall time of the run that encoded each
set of images, so a rerun reports that original timing (and says that the
cache was used).

Identification, as face_recognition's examples do it: the gallery is the
encodings of the enrolled images (a person whose enrolment image has no face
is not enrolled); for a probe, `face_distance` to every enrolled encoding;
the name is face_recognition's default decision, `compare_faces` with
tolerance=0.6 and then the best (smallest-distance) match among the True
ones, otherwise "unknown".

OUT_JSONL gets one line per probe, in the format of `faces identify --json`:
  {"file": PATH, "score": "negative distance",
   "faces": [{"box": {"x", "y", "width", "height"}, "name": NAME or "unknown",
              "similarity": S, "candidates": [{"name", "similarity"}, ... top 5 distinct people]}]}
with similarity = -(Euclidean distance), so that higher is better as for our
tool; `faces` is empty when no face was found. A sidecar OUT_JSONL minus
".jsonl" plus ".timing.json" gets the timing: images, seconds,
images_per_second, no_face, and how it was obtained, plus the CPU time of
the workers (images_per_cpu_second: less sensitive to other load on the
machine than the wall time).
"""
import argparse
import csv
import datetime
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time

# One BLAS/OpenMP thread per worker: --jobs is the whole parallelism.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "faces-bench", "fr-lfw-encodings.npz")
# Anything that changes the encodings changes this, and invalidates the cache.
SETTINGS = "face_recognition 1.3.0; face_locations(model=hog, upsample=1); " \
           "main face = max area*(1-dist/half_diag); face_encodings(model=small, num_jitters=1)"
TOP_K = 5
TOLERANCE = 0.6
CHECKPOINT_EVERY = 500


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main_face(boxes, width, height):
    """The (top, right, bottom, left) box with the largest area weighted by closeness to the centre."""
    cx, cy = width / 2, height / 2
    half_diagonal = max(math.hypot(cx, cy), 1.0)

    def weight(box):
        top, right, bottom, left = box
        off = math.hypot((left + right) / 2 - cx, (top + bottom) / 2 - cy) / half_diagonal
        return (right - left) * (bottom - top) * max(0.0, 1.0 - off)

    return max(boxes, key=weight)


def encode(path):
    """(path, encoding or None, box (top, right, bottom, left) or None, faces found,
    (load, face_locations, face_encodings wall seconds, CPU seconds of the whole image))."""
    import face_recognition
    c0 = time.process_time()
    t0 = time.perf_counter()
    image = face_recognition.load_image_file(path)
    t1 = time.perf_counter()
    boxes = face_recognition.face_locations(image)
    t2 = time.perf_counter()
    if not boxes:
        return path, None, None, 0, (t1 - t0, t2 - t1, 0.0, time.process_time() - c0)
    box = main_face(boxes, image.shape[1], image.shape[0])
    enc = face_recognition.face_encodings(image, [box], num_jitters=1, model="small")[0]
    t3 = time.perf_counter()
    return path, enc, box, len(boxes), (t1 - t0, t2 - t1, t3 - t2, time.process_time() - c0)


def load_cache(path):
    """{path: (encoding or None, box or None, faces, seconds[4])}, meta."""
    empty = {}, {"settings": SETTINGS, "runs": []}
    if not path or not os.path.exists(path):
        return empty
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("settings") != SETTINGS:
            print(f"cache {path} has other settings; ignoring it", file=sys.stderr)
            return empty
        entries = {}
        for p, e, b, n, s in zip(z["paths"], z["encodings"], z["boxes"], z["faces"], z["seconds"]):
            found = n > 0
            entries[str(p)] = (e.copy() if found else None, tuple(int(v) for v in b) if found else None,
                               int(n), tuple(float(v) for v in s))
    return entries, meta


def save_cache(path, entries, meta):
    """Writes the cache atomically (temporary file, then rename)."""
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    paths = sorted(entries)
    encodings = np.full((len(paths), 128), np.nan)
    boxes = np.full((len(paths), 4), -1, dtype=np.int64)
    for i, p in enumerate(paths):
        enc, box, _, _ = entries[p]
        if enc is not None:
            encodings[i] = enc
            boxes[i] = box
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, paths=np.array(paths, dtype=str), encodings=encodings, boxes=boxes,
             faces=np.array([entries[p][2] for p in paths], dtype=np.int64),
             seconds=np.array([entries[p][3] for p in paths], dtype=np.float64).reshape(len(paths), 4),
             meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)


def paths_digest(paths):
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()


def encode_all(images, jobs, cache_path):
    """Encodes every image (from the cache when there), returns entries and a timing report."""
    entries, meta = load_cache(cache_path)
    todo = [p for p in images if p not in entries]
    digest = paths_digest(images)
    cached = len(images) - len(todo)
    print(f"cache {cache_path or '(disabled)'}: {cached} of {len(images)} images cached, "
          f"{len(todo)} to encode with {jobs} job(s)", file=sys.stderr)
    wall = None
    if todo:
        start = time.perf_counter()
        done = 0
        with multiprocessing.Pool(jobs) as pool:
            for path, enc, box, n, secs in pool.imap(encode, todo, chunksize=4):
                entries[path] = (enc, box, n, secs)
                done += 1
                if done % CHECKPOINT_EVERY == 0 or done == len(todo):
                    elapsed = time.perf_counter() - start
                    print(f"  {done}/{len(todo)} encoded, {elapsed:.0f} s, {done / elapsed:.2f} images/s",
                          file=sys.stderr)
                    if done < len(todo):
                        save_cache(cache_path, entries, meta)
        wall = time.perf_counter() - start
        if not cached:
            meta["runs"].append({"paths_sha256": digest, "images": len(images), "seconds": wall, "jobs": jobs,
                                 "date": datetime.datetime.now().isoformat(timespec="seconds"),
                                 "host_cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()})
        save_cache(cache_path, entries, meta)

    per_image = np.array([entries[p][3] for p in images]).reshape(len(images), 4)
    timing = {
        "tool": "face_recognition", "images": len(images),
        "no_face": sum(entries[p][0] is None for p in images),
        "several_faces": sum(entries[p][2] > 1 for p in images),
        "mean_ms": {"load": 1e3 * per_image[:, 0].mean(), "face_locations": 1e3 * per_image[:, 1].mean(),
                    "face_encodings (images with a face)": 1e3 * per_image[:, 2].sum()
                    / max(1, sum(entries[p][0] is not None for p in images)),
                    "cpu per image": 1e3 * per_image[:, 3].mean()},
        "cpu_seconds": float(per_image[:, 3].sum()),
        "cache_used": cached > 0, "cache": cache_path,
    }
    run = next((r for r in reversed(meta["runs"]) if r["paths_sha256"] == digest), None)
    if not cached:
        timing.update(seconds=wall, jobs=jobs, timing_from="this run", load_average_at_end=os.getloadavg())
    elif run:
        timing.update(seconds=run["seconds"], jobs=run["jobs"], load_average_at_end=run.get("load_average_at_end"),
                      timing_from=f"cache: original run of {run['date']} over these {run['images']} images")
    else:
        # Encoded piecemeal (resumed, or a subset of an earlier run): the sum of per-image times,
        # i.e. the wall time of one worker, divided by the number of workers that ran.
        timing.update(seconds=float(per_image[:, :3].sum()) / jobs, jobs=jobs,
                      timing_from="sum of cached per-image times / jobs (no single run covered these images)")
    timing["images_per_second"] = len(images) / timing["seconds"]
    timing["images_per_cpu_second"] = len(images) / timing["cpu_seconds"]
    timing["seconds_this_run"] = wall
    return entries, timing


def identify(probe_enc, gallery, names):
    """Candidates (top TOP_K distinct people by distance) and face_recognition's default name."""
    if not len(gallery):
        return [], "unknown", None
    distances = np.linalg.norm(gallery - probe_enc, axis=1)  # face_recognition.face_distance
    best = {}
    for i in np.argsort(distances, kind="stable"):
        best.setdefault(names[i], float(distances[i]))
        if len(best) == TOP_K:
            break
    candidates = [{"name": n, "similarity": -d} for n, d in best.items()]
    matches = distances <= TOLERANCE  # face_recognition.compare_faces(tolerance=0.6)
    if matches.any():
        i = int(np.flatnonzero(matches)[np.argmin(distances[matches])])
        return candidates, names[i], -float(distances[i])
    return candidates, "unknown", candidates[0]["similarity"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lfw_dir", help="LFW folder (relative paths in the CSVs are taken from here)")
    ap.add_argument("split_dir", help="folder with enrol.csv and probes.csv (lfw_split.py)")
    ap.add_argument("out_jsonl")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help=f"encoding cache (default {DEFAULT_CACHE})")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    args = ap.parse_args()

    absolute = lambda p: os.path.abspath(os.path.join(args.lfw_dir, p))
    enrol = [(absolute(r["path"]), r["subject"]) for r in read_csv(os.path.join(args.split_dir, "enrol.csv"))]
    probes = [(absolute(r["path"]), r["subject"], r["mated"] == "1")
              for r in read_csv(os.path.join(args.split_dir, "probes.csv"))]
    images = list(dict.fromkeys([p for p, _ in enrol] + [p for p, _, _ in probes]))

    entries, timing = encode_all(images, args.jobs, None if args.no_cache else args.cache)

    enrolled = [(p, s) for p, s in enrol if entries[p][0] is not None]
    names = [s for _, s in enrolled]
    gallery = np.array([entries[p][0] for p, _ in enrolled]).reshape(len(enrolled), 128)
    timing["enrolled"] = len(enrolled)
    timing["enrol_no_face"] = len(enrol) - len(enrolled)

    start = time.perf_counter()
    out_dir = os.path.dirname(os.path.abspath(args.out_jsonl))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out_jsonl, "w") as f:
        for path, _, _ in probes:
            enc, box, _, _ = entries[path]
            faces = []
            if enc is not None:
                top, right, bottom, left = box
                candidates, name, similarity = identify(enc, gallery, names)
                faces.append({"box": {"x": left, "y": top, "width": right - left, "height": bottom - top},
                              "name": name, "similarity": similarity, "candidates": candidates})
            f.write(json.dumps({"file": path, "score": "negative distance", "faces": faces}) + "\n")
    timing["search_seconds"] = time.perf_counter() - start

    stem = args.out_jsonl[:-len(".jsonl")] if args.out_jsonl.endswith(".jsonl") else args.out_jsonl
    with open(stem + ".timing.json", "w") as f:
        json.dump(timing, f, indent=2)
        f.write("\n")
    cache_note = "cache used" if timing["cache_used"] else "cache not used"
    print(f"face_recognition: {timing['images']} images in {timing['seconds']:.1f} s "
          f"({timing['images_per_second']:.2f} images/s, {timing['jobs']} job(s), {cache_note}; "
          f"timing from {timing['timing_from']}), {timing['no_face']} without a face; "
          f"{len(enrolled)} of {len(enrol)} enrolled; {len(probes)} probes -> {args.out_jsonl}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
