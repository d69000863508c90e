"""The thin ComfyUI layer. Each top-level module here is one node (named for it); extension.py lists
them for the host and types.py holds the socket types they share. The machinery the nodes use lives
in subpackages named for what they do:

- host/: reading the host's models, CLIP and folders;
- schema/: schema pieces several nodes share (face-model inputs, search words);
- patching/: the ID-Adapter attached to a MODEL;
- training/: Learn ID Token's loop on the host and the files a run writes.

No node module imports another, and no subpackage imports a node module
(tests/test_import_layering.py checks both, and the subpackages' own rules in their docstrings).
"""
