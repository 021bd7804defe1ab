"""Times face_recognition's HOG detector the way its users run it.

Each image is resized (Pillow, bilinear) so its longer side is each size, then
`face_recognition.face_locations(img)` runs with its defaults (model="hog",
number_of_times_to_upsample=1): one warm-up, then --repeat timed runs.
Prints one JSON object like `faces bench detect --json`.
"""
import argparse
import json
import resource
import statistics
import time

import face_recognition
import numpy as np
from PIL import Image, ImageOps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--sizes", default="640,1920")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for path in args.images:
        original = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        for side in [int(s) for s in args.sizes.split(",")]:
            scale = side / max(original.size)
            size = (round(original.width * scale), round(original.height * scale))
            img = np.asarray(original.resize(size, Image.BILINEAR))
            faces = len(face_recognition.face_locations(img))
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                face_recognition.face_locations(img)
                times.append((time.perf_counter() - t) * 1e3)
            rows.append({"file": path, "width": size[0], "height": size[1], "faces": faces,
                         "median_ms": statistics.median(times), "min_ms": min(times)})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": "face_recognition HOG", "threads": 1, "peak_rss_mb": peak,
                      "measurements": rows}))


if __name__ == "__main__":
    main()
