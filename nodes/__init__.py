"""The thin ComfyUI layer: node schemas, host types, folder registration and model patches."""
