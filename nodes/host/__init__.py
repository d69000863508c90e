"""Reading the host's objects and folders: which base a MODEL is (model_arch), the CLIP's encoders and
encoding through the host's path (text_encoders), the textual ID anchor encoded with the user's CLIP
(textual_anchor), and the pack's model folders (model_folders).

May import: idea/ and the host (comfy, folder_paths). No other nodes/ subpackage, never a node module.
"""
