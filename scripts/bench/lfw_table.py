"""Prints the fr_lfw.py report (JSON on stdin) as a table like `faces evaluate lfw`."""
import json
import sys

r = json.load(sys.stdin)
print(f"{'MODEL':<38} {'AT 0.6':>8} {'10-FOLD':>16} {'TAR@FAR=1e-3':>14} {'NO FACE':>8} {'MS/IMAGE':>9}")
print(f"{r['model']:<38} {100 * r['accuracy_at_0.6']:>7.2f}% {100 * r['mean_accuracy']:>9.2f}% "
      f"±{100 * r['std_accuracy']:.2f} {100 * r['tar_at_far_1e3']:>13.2f}% {r['images_without_face']:>8} "
      f"{r['ms_per_image']:>9.1f}")
rate = lambda x: f"{x['value']:.2e} [{x['low']:.2e}, {x['high']:.2e}] ({x['events']} of {x['trials']})"
print(f"at its 0.6 tolerance: FMR {rate(r['fmr_at_0.6'])}, FNMR {rate(r['fnmr_at_0.6'])}")
