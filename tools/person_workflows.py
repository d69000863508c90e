"""Workflows 1 to 4 of tools/make_workflows.py: one person learned from photos and then generated
(SD1.5, SDXL), or generated from a saved identity, with or without a ControlNet pose. Each is its API
prompt, its Markdown notes and its layout.
"""
from __future__ import annotations

from .workflow_parts import (
    BATCH, CFG, CHECKPOINTS, COLORS, CONTROLNET, FACE_PACK_LINE, LABELS, MODEL_SOURCES, NAME, NEGATIVE, PHOTO,
    POSE_IMAGE, POSITIVE, SIZES, TOP, at, checkpoint_line, columns, group, layout, models_note, node, note,
    result_lines, wide)

# ---- the prompts ----

def generation_nodes(model_from: list, arch: str, first: int, clip_from: list | None = None) -> dict:
    """Prompt, negative prompt, latent, sampler, decode and save, ids from `first`; the checkpoint is
    node "1". clip_from: where the prompts' CLIP comes from (default the checkpoint's)."""
    clip_from = clip_from or ["1", 1]
    i = [str(first + k) for k in range(6)]
    size = SIZES[arch]
    return {
        i[0]: node("CLIPTextEncode", f"Prompt (embedding:{NAME})", text=POSITIVE, clip=clip_from),
        i[1]: node("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=clip_from),
        i[2]: node("EmptyLatentImage", width=size, height=size, batch_size=1),
        i[3]: node("KSampler", seed=1234, steps=30, cfg=CFG[arch], sampler_name="dpmpp_2m", scheduler="karras",
                   denoise=1.0, model=model_from, positive=[i[0], 0], negative=[i[1], 0], latent_image=[i[2], 0]),
        i[4]: node("VAEDecode", samples=[i[3], 0], vae=["1", 2]),
        i[5]: node("SaveImage", images=[i[4], 0], filename_prefix=f"ID-EA/{NAME}"),
    }


def train_and_generate(arch: str) -> dict:
    """Photos -> face -> identity -> training -> the adapter on the model -> image -> likeness.
    Every output depends on the checkpoint and the face pack, so a missing model refuses the whole
    prompt instead of running the part that does not need it."""
    size = SIZES[arch]
    face = {"model_pack": "antelopev2", "provider": "auto", "detection_size": 640}
    prompt = {
        "1": node("CheckpointLoaderSimple", f"Load Checkpoint ({LABELS[arch]})", ckpt_name=CHECKPOINTS[arch]),
        "2": node("LoadImage", "Reference photo", image=PHOTO),
        "5": node("IDEA_FaceIDEmbed", images=["2", 0], face_selection="largest", face_index=0, crop_size=size,
                  framing="face", **face),
        "7": node("IDEA_IDEnhancer", face_embedding=["5", 0], clip=["1", 1], num_tokens=2, seed=0,
                  train_enhancer=True),
        "8": node("IDEA_LearnIDToken", model=["1", 0], clip=["1", 1], vae=["1", 2], images=["5", 1],
                  identity=["7", 0], name=NAME, steps=320, batch_size=BATCH[arch], learning_rate=0.0015, seed=0,
                  train_enhancer="from identity", resolution=size if arch == "sdxl" else 0,
                  gradient_checkpointing="auto", precision="auto", save_every=0, resume=True),
        "9": node("PreviewImage", "Training loss", images=["8", 1]),
        "10": node("IDEA_ApplyIDAdapter", model=["1", 0], identity=["8", 0], weight=1.0, start_at=0.0,
                   end_at=1.0, apply_to="cond"),
    }
    # the prompts take Learn ID Token's clip output: encoded after training, they find embedding:NAME
    prompt.update(generation_nodes(["10", 0], arch, 11, clip_from=["8", 2]))  # 11..16, the image is 15
    # the pack named once, in FaceID Embed: Face Similarity uses the one the reference was made with
    prompt["17"] = node("IDEA_FaceSimilarity", images=["15", 0], reference=["5", 0],
                        **{**face, "model_pack": "same as reference"})
    return prompt


def saved_identity(controlnet: bool = False) -> dict:
    """A saved identity on the model and in the prompt; with a ControlNet on both prompts."""
    prompt = {
        "1": node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINTS["sd1"]),
        "2": node("IDEA_LoadIdentity", identity_file=f"{NAME}.safetensors"),
        "3": node("IDEA_ApplyIDAdapter", model=["1", 0], identity=["2", 0], weight=1.0, start_at=0.0,
                  end_at=1.0, apply_to="cond"),
    }
    prompt.update(generation_nodes(["3", 0], "sd1", 4))  # 4..9: prompts 4/5, sampler 7
    if controlnet:
        prompt["10"] = node("ControlNetLoader", "Load ControlNet (OpenPose)", control_net_name=CONTROLNET)
        prompt["11"] = node("LoadImage", "Pose image", image=POSE_IMAGE)
        # no vae: an SD1.5 OpenPose ControlNet takes the pose picture as it is
        prompt["12"] = node("ControlNetApplyAdvanced", positive=["4", 0], negative=["5", 0],
                            control_net=["10", 0], image=["11", 0], strength=1.0, start_percent=0.0,
                            end_percent=1.0)
        prompt["7"]["inputs"].update(positive=["12", 0], negative=["12", 1])
    return prompt


# ---- notes ----

def train_notes(arch: str) -> dict:
    label, size = LABELS[arch], SIZES[arch]
    after = " (with this SDXL checkpoint and a 1024 px latent)" if arch == "sdxl" else ""
    readme = note(f"Read me: learn a person, then generate ({label})", f"""
## Learn a person from photos, then generate ({label})
Queue once: the person's identity is trained on your checkpoint (320 steps) and used for a new image.

{models_note(checkpoint_line(arch, "train and generate with the same one"), FACE_PACK_LINE)}

**Photo** of the person, in `ComfyUI/input/` or uploaded in **Reference photo**; the face is cropped to
{size} px. More photos (two to five help): add a Load Image per photo and join them with Image Batch
nodes (image1: the photos so far, image2: the new one) into FaceID Embed's `images`.

**Queue.** Learn ID Token saves
{result_lines(NAME)}

`resume` is on: queueing again reuses the saved identity (or finishes an interrupted one). For another
person change `name`. Then generate with template **2**{after}.

**How the identity is used**: `embedding:{NAME}` in the prompt is the two learned words, and **Apply
ID-Adapter** adds the identity to every cross-attention (route B); its `weight` 0 leaves the model as it
was (route A, as the authors generated; template **6** compares both). The prompts read Learn ID Token's
`clip`, so they are encoded after training has saved `embedding:{NAME}` and find it in this same run.
""", 1200, 240)
    return {
        "readme": readme,
        "train": note("Training settings", f"""
The paper's recipe: 2 tokens, 320 steps, learning rate 0.0015 per sample, batch {BATCH[arch]}{
" (the paper's 8, halved for 1024 px)" if arch == "sdxl" else ""}. Out of memory: lower `batch_size`,
or set `gradient_checkpointing` on. Cancelling keeps the steps done; the next queue continues them.
""", 255, 140),
        "check": note("About the likeness number", """
**Face Similarity** shows on the node the cosine similarity of the faces in the new image and in
the reference photos: higher is more alike. Compare numbers only within one model pack (use the same
pack as FaceID Embed). An image without a face counts as a miss.
""", 220, 240),
    }


def saved_notes(controlnet: bool) -> dict:
    pose = ("\n- `ComfyUI/models/controlnet/`: an SD1.5 OpenPose ControlNet, chosen in **Load ControlNet**. The "
            f"workflow names [{CONTROLNET}]({MODEL_SOURCES[CONTROLNET][1]}).") if controlnet else ""
    pose_image = (f"\n\n**Pose image**: an OpenPose skeleton in `ComfyUI/input/` (the workflow names `{POSE_IMAGE}`), "
                  "e.g. made from a photo by an OpenPose preprocessor node. Lower `strength` to loosen the pose."
                  ) if controlnet else ""
    heading = "Generate with a learned person" + (" in a pose" if controlnet else "")
    return {"readme": note(f"Read me: {heading.lower()}", f"""
## {heading} (SD1.5)
{models_note(checkpoint_line("sd1", "the one the identity was trained on, or another of that base"))}{pose}

**The identity**, both files written by Learn ID Token (template **1**):
{result_lines(NAME)}

Press **R** to refresh the lists after training.{pose_image}

**Prompt**: keep `embedding:{NAME}`. Lower Apply ID-Adapter's `weight` for a lighter touch (0: route A,
the learned words alone, as the authors generated; template **6** compares), or `end_at` to free the
late steps.
""", 760, 300 if controlnet else 250)}


# ---- layouts: columns left to right, groups framing their members ----

class TrainNodes:
    """The node ids train_and_generate gives, by what each node is."""
    CHECKPOINT, PHOTO, FACE, ENHANCER, LEARN, LOSS, ADAPTER = "1", "2", "5", "7", "8", "9", "10"
    PROMPT, NEGATIVE, LATENT, SAMPLER, DECODE, SAVE, LIKENESS = "11", "12", "13", "14", "15", "16", "17"


class TrainRows:
    """Where boxes start in workflows 1 and 4 (canvas y; each box starts no higher). The reference's wire
    from FaceID Embed to Face Similarity runs in the lane just above FACE_SIDE, the checkpoint's VAE to
    VAE Decode in the lane above CHECKPOINT."""
    FACE_SIDE = 406  # the photo and FaceID Embed, below the Read-me spanning the first four columns
    CHECKPOINT = 1140  # Load Checkpoint, below the face side: its wires enter the nodes from below
    ENHANCER = 540
    LEARN = 510
    LATENT = 220  # Empty Latent Image, above the reference's lane (its one crossing)
    LOSS = 480  # the loss preview, then the two prompts below it
    ADAPTER = 980
    SAMPLER = 880
    DECODE = 1210  # VAE Decode, down at the checkpoint's VAE lane
    LIKENESS = 386  # Face Similarity, below the reference's lane, with Save Image below it


def train_layout(arch: str) -> dict:
    """Two lanes keep the long wires clear of every node: FaceID Embed's reference to Face Similarity
    runs along the top of the flow (only notes and Empty Latent Image sit above it), the checkpoint's
    VAE to VAE Decode along the bottom; the face side enters the nodes from above, the checkpoint from
    below. The Read-me spans the first four columns, so it is short enough for the whole flow to fit
    the frontend's Fit View with its text drawn."""
    n, y = TrainNodes, TrainRows
    flow = columns(
        photo=[at("note:readme", span=True), at(n.PHOTO, y.FACE_SIDE)],
        face_and_checkpoint=wide(at(n.FACE, y.FACE_SIDE), at(n.CHECKPOINT, y.CHECKPOINT), gap=50),
        enhancer=wide(at(n.ENHANCER, y.ENHANCER), gap=150),
        learn=wide(at(n.LEARN, y.LEARN), gap=50),
        prompts_and_adapter=wide(at("note:train", TOP), at(n.LATENT, y.LATENT), at(n.LOSS, y.LOSS), n.PROMPT,
                                 n.NEGATIVE, at(n.ADAPTER, y.ADAPTER), gap=70),
        sampler=wide(at(n.SAMPLER, y.SAMPLER), gap=70),
        decode=wide(at(n.DECODE, y.DECODE), gap=60),
        check_and_save=[at("note:check", TOP), at(n.LIKENESS, y.LIKENESS), n.SAVE],
    )
    groups = [group("1 · Photo and checkpoint", COLORS["photos"], n.PHOTO, n.FACE, n.CHECKPOINT),
              group("2 · Learn the person", COLORS["train"], n.ENHANCER, n.LEARN),
              group("3 · Generate with it", COLORS["generate"], n.LATENT, n.LOSS, n.ADAPTER, n.PROMPT, n.NEGATIVE,
                    n.SAMPLER, n.DECODE),
              group("4 · Look and compare", COLORS["check"], n.LIKENESS, n.SAVE)]
    # Empty Latent Image has no input, so it waits above the top lane; its wire down to the sampler is
    # the one that crosses the reference's lane.
    return layout(flow, groups, train_notes(arch), crossings=[((n.LATENT, n.SAMPLER), (n.FACE, n.LIKENESS))])


class SavedNodes:
    """The node ids saved_identity gives, by what each node is (the pose nodes only with a ControlNet)."""
    CHECKPOINT, IDENTITY, ADAPTER, PROMPT, NEGATIVE, LATENT, SAMPLER, DECODE, SAVE = map(str, range(1, 10))
    CONTROLNET, POSE, APPLY_CONTROLNET = "10", "11", "12"


class SavedRows:
    """Where boxes start in workflow 2 (canvas y; each box starts no higher): the checkpoint low, so
    its VAE runs along the bottom to VAE Decode, the rest above it."""
    MODELS = 370  # Load Identity and Apply ID-Adapter, below the Read-me
    CHECKPOINT = 1060
    SAMPLER = 480
    DECODE = 1080  # VAE Decode, at the checkpoint's VAE lane
    SAVE = 1040


class PoseRows:
    """Where boxes start in workflow 3 (canvas y; each box starts no higher), the pose nodes in their
    own column between the prompts and Apply ControlNet."""
    CHECKPOINT = 460  # below the Read-me, Load Identity under it
    IDENTITY = 1028
    PROMPTS = 400  # the two prompts, Apply ID-Adapter below them
    ADAPTER = 750
    CONTROLNET = 610
    POSE = 868
    APPLY_CONTROLNET = 510
    LATENT = 1046
    SAMPLER = 710
    DECODE = 410
    SAVE = 390


def saved_layout(controlnet: bool) -> dict:
    """The checkpoint's VAE runs along the bottom to VAE Decode; the rest flows above it."""
    n = SavedNodes
    if controlnet:
        y = PoseRows
        flow = columns(
            models=[at("note:readme", span=True), at(n.CHECKPOINT, y.CHECKPOINT), at(n.IDENTITY, y.IDENTITY)],
            prompts=wide(at(n.PROMPT, y.PROMPTS), n.NEGATIVE, at(n.ADAPTER, y.ADAPTER), gap=60),
            pose=[at(n.CONTROLNET, y.CONTROLNET), at(n.POSE, y.POSE)],
            apply_pose=wide(at(n.APPLY_CONTROLNET, y.APPLY_CONTROLNET), at(n.LATENT, y.LATENT), gap=60),
            sampler=wide(at(n.SAMPLER, y.SAMPLER), gap=80),
            decode=[at(n.DECODE, y.DECODE)],
            save=[at(n.SAVE, y.SAVE)],
        )
        groups = [group("1 · Models", COLORS["train"], n.CHECKPOINT, n.IDENTITY),
                  group("2 · Prompts", COLORS["generate"], n.PROMPT, n.NEGATIVE, n.ADAPTER),
                  group("3 · Pose", COLORS["photos"], n.CONTROLNET, n.POSE),
                  group("4 · Generate in the pose", COLORS["generate"], n.APPLY_CONTROLNET, n.LATENT, n.SAMPLER,
                        n.DECODE, n.SAVE)]
        # the pose column sits between the prompts and Apply ControlNet: the adapted model and the
        # checkpoint's VAE pass it on their way right, once each
        crossings = [((n.ADAPTER, n.SAMPLER), (n.POSE, n.APPLY_CONTROLNET)),
                     ((n.CHECKPOINT, n.DECODE), (n.PROMPT, n.APPLY_CONTROLNET))]
    else:
        y = SavedRows
        flow = columns(
            models=wide(at("note:readme", span=True), at(n.IDENTITY, y.MODELS), at(n.CHECKPOINT, y.CHECKPOINT),
                        gap=100),
            prompts=wide(at(n.ADAPTER, y.MODELS), n.PROMPT, n.NEGATIVE, n.LATENT, gap=60),
            sampler=wide(at(n.SAMPLER, y.SAMPLER), gap=80),
            decode=[at(n.DECODE, y.DECODE)],
            save=[at(n.SAVE, y.SAVE)],
        )
        groups = [group("1 · Models", COLORS["train"], n.IDENTITY, n.CHECKPOINT),
                  group("2 · Generate", COLORS["generate"], n.ADAPTER, n.PROMPT, n.NEGATIVE, n.LATENT, n.SAMPLER,
                        n.DECODE, n.SAVE)]
        crossings = []
    return layout(flow, groups, saved_notes(controlnet), crossings)
