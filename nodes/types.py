"""Pack-defined socket types, so only matching nodes can be wired together."""
from comfy_api.latest import io

FaceEmbeddingType = io.Custom("IDEA_FACE_EMBEDDING")
IdentityType = io.Custom("IDEA_IDENTITY")
