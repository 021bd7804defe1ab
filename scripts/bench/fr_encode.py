"""Times face_recognition's `face_encodings` per face (its 5-point landmarks,
chip and dlib ResNet, num_jitters=1), on faces found once by `face_locations`.
Prints one JSON object like `faces bench embed --json`."""
import json
import resource
import statistics
import sys
import time

import face_recognition

repeat = 5
times, faces = [], 0
for path in sys.argv[1:]:
    image = face_recognition.load_image_file(path)
    for box in face_recognition.face_locations(image):
        faces += 1
        face_recognition.face_encodings(image, [box])
        for _ in range(repeat):
            t = time.perf_counter()
            face_recognition.face_encodings(image, [box])
            times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"engine": "face_recognition", "threads": 1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "models": [{"model": "dlib ResNet (face_encodings)", "faces": faces, "align_ms": None,
                              "embed_ms": statistics.median(times), "embed_flip_ms": None}]}))
