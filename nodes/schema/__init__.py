"""Schema pieces several nodes share: the face-model inputs of FaceID Embed and Face Similarity (with
loading the pack they name) and the search words given to the host (search_words).

May import: idea/, the host's schema API (comfy_api) and nodes/host/ (the model folders). Never a
node module.
"""
