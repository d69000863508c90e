"""Training on the host: what Learn ID Token runs, kept out of the node module.

Owns the training loop run inside the host's sampler (trainer), the captions through the user's text
encoder with gradients (caption_encoder), letting autograd through the host's frozen models
(autograd_weights, flux_autograd), the precision and gradient-checkpointing choices (precision,
checkpointing), the reference latents, the files a run writes and resumes from (run_files), the
loss-curve image and the errors a stopped run raises.

May import: idea/, the host (comfy, comfy_extras, folder_paths), nodes/host/ and nodes/patching/
(the adapter is attached for training by the same code Apply ID-Adapter uses). Never a node module.
"""
