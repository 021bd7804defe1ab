//! Our own importers from other model formats to ONNX. Each reads its format
//! byte by byte (no third-party runtime is needed or run) and writes an ONNX
//! graph with [`super::onnx`], or rewrites an ONNX graph in place. The output is deterministic, so its SHA-256 is
//! pinned in the manifest like any downloaded file.

mod dlib;
mod onnx;
mod tflite;

use super::manifest::Convert;

/// Converts a model file to ONNX bytes.
pub fn convert(kind: Convert, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Convert::Tflite => tflite::to_onnx(bytes),
        Convert::Dlib => dlib::to_onnx(bytes),
        Convert::Onnx => onnx::to_onnx(bytes),
    }
}
