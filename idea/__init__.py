"""ID-EA, the method: face embeddings, the textual ID anchor, the ID-Enhancer, the ID-Adapter, the
regulariser, training pieces and the identity file.

This package never imports ComfyUI, so it can be unit-tested with plain torch and reused outside the
host. The face stack (onnxruntime, run by onnx_faces/) is imported lazily, only when a face model is
actually run.
"""
