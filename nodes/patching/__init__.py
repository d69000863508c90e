"""Model patches: the ID-Adapter attached to a MODEL (adapter_patch) and what both Apply nodes take
from an identity (frozen_identity). Shared by the two Apply nodes and by training, so no node module
has to import another.

May import: idea/ and the host's patcher API (comfy). No other nodes/ subpackage, never a node module.
"""
