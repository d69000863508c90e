"""Workflows 6 and 7 of tools/make_workflows.py, and the blueprint "Compare route A and route B" they
are made of: the two ways to generate with a learned person, side by side, scored by Face Similarity
against the person's photo.

Route A is the learned words alone (`embedding:NAME` on the plain model: what the authors' inference
script does); route B adds Apply ID-Adapter (the conditioning the words were trained under). Every
route samples the same prompt, latent, noise seed, sampler, steps and CFG (one node each, read by all
three), so the pictures differ only by the route.

6 compares the routes for a saved person. 7 reproduces the authors' released run: their recipe on
SD2.1-base in fp32, then the same blueprint set to their sampling (DPM-Solver++ 2M, 50 steps, CFG
7.5, no negative prompt). Both hold the blueprint's nodes under the same ids, so the cut gives both
the same subgraph, with their own settings.
"""
from __future__ import annotations

from .workflow_parts import (CHECKPOINTS, COLORS, FACE_PACK_LINE, NAME, NEGATIVE, PHOTO, POSITIVE, TOP, at,
                            checkpoint_line, columns, group, layout, models_note, node, note, reroute, result_lines,
                            wide)

FACE = {"model_pack": "antelopev2", "provider": "auto", "detection_size": 640}
RELEASED_NAME = "my_person_sd21"  # the identity the reproduce workflow trains: files and embedding:NAME
RELEASED_PROMPT = f"a photo of a embedding:{RELEASED_NAME} person"  # the README's "A photo of a {} person"
# The authors' test.py: diffusers' DPMSolverMultistepScheduler (DPM-Solver++ 2M) from SD2.1-base's
# config, 50 steps, the pipeline's default guidance 7.5, no negative prompt; sgm_uniform spaces the
# 50 steps as that scheduler's default "linspace" spacing does.
RELEASED_SAMPLING = dict(steps=50, cfg=7.5, sampler_name="dpmpp_2m", scheduler="sgm_uniform")
PACK_SAMPLING = dict(steps=30, cfg=7.0, sampler_name="dpmpp_2m", scheduler="karras")  # workflows 1-3
IMAGES_PER_ROUTE = 4
SEED = 1234
ROUTES = (0.0, 0.5, 1.0)  # Apply ID-Adapter's weight: 0 is route A (the model exactly as loaded), then route B
SHORT = {0.0: "route A", 0.5: "route B 0.5", 1.0: "route B 1"}
# the blueprint's nodes are 5..26 in both workflows (tools/blueprints.py cuts them out)
OUTPUTS = 27  # Save Image and Preview Any per route: 27..32
OUTPUT_SIZES = {"SaveImage": [220, 180], "PreviewAny": [220, 120]}


def route_nodes(prompt: dict, *, model: list, clip: list, identity: list, reference: list, text: str,
                negative: str, sampling: dict) -> None:
    """The blueprint's nodes and, per route, a Save Image and a Preview Any of its likeness.

    Shared by every route: the prompts (5, 6), the latent (7), the noise seed (8), the sampler (9),
    steps and scheduler (10), CFG (11). Per route Apply ID-Adapter at its weight (12..14; at 0 it
    leaves the model exactly as it was, which is route A, and every route reads the identity), a
    guider (15..17) and a sampler (18..20); then each route's decoder and likeness side by side
    (21..26), so the blueprint lists its outputs route by route."""
    prompt.update({
        "5": node("CLIPTextEncode", "Prompt", text=text, clip=clip),
        "6": node("CLIPTextEncode", "Negative prompt", text=negative, clip=clip),
        "7": node("EmptyLatentImage", width=512, height=512, batch_size=IMAGES_PER_ROUTE),
        "8": node("RandomNoise", "Seed (every route)", noise_seed=SEED),
        "9": node("KSamplerSelect", "Sampler (every route)", sampler_name=sampling["sampler_name"]),
        "10": node("BasicScheduler", "Steps (every route)", model=model, scheduler=sampling["scheduler"],
                   steps=sampling["steps"], denoise=1.0),
        "11": node("PrimitiveFloat", "CFG (every route)", value=sampling["cfg"]),
    })
    for k, weight in enumerate(ROUTES):
        adapter, guider, sampler = str(12 + k), str(15 + k), str(18 + k)
        decoder, likeness = str(21 + 2 * k), str(22 + 2 * k)
        prompt[adapter] = node("IDEA_ApplyIDAdapter", f"Apply ID-Adapter {weight:g} ({SHORT[weight]})", model=model,
                               identity=identity, weight=weight, start_at=0.0, end_at=1.0, apply_to="cond")
        prompt[guider] = node("CFGGuider", f"Guider, {SHORT[weight]}", model=[adapter, 0], positive=["5", 0],
                              negative=["6", 0], cfg=["11", 0])
        prompt[sampler] = node("SamplerCustomAdvanced", f"Sample, {SHORT[weight]}", noise=["8", 0], guider=[guider, 0],
                               sampler=["9", 0], sigmas=["10", 0], latent_image=["7", 0])
        prompt[decoder] = node("VAEDecode", f"VAE Decode, {SHORT[weight]}", samples=[sampler, 0], vae=["1", 2])
        prompt[likeness] = node("IDEA_FaceSimilarity", f"Face Similarity, {SHORT[weight]}", images=[decoder, 0],
                                reference=reference, **{**FACE, "model_pack": "same as reference"},
                                face_selection="largest", face_index=0)
        save, shown = str(OUTPUTS + 2 * k), str(OUTPUTS + 1 + 2 * k)
        prompt[save] = node("SaveImage", f"Pictures, {SHORT[weight]}", images=[decoder, 0],
                            filename_prefix=f"ID-EA/{SHORT[weight].replace(' ', '_')}")
        prompt[shown] = node("PreviewAny", f"Likeness, {SHORT[weight]}", source=[likeness, 3])


def compare_routes() -> dict:
    """A saved person (Load Identity) and a photo of them: the three routes, each saved and scored."""
    prompt = {
        "1": node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINTS["sd1"]),
        "2": node("IDEA_LoadIdentity", identity_file=f"{NAME}.safetensors"),
        "3": node("LoadImage", "Reference photo", image=PHOTO),
        "4": node("IDEA_FaceIDEmbed", images=["3", 0], face_selection="largest", face_index=0, crop_size=512,
                  framing="face", **FACE),
    }
    route_nodes(prompt, model=["1", 0], clip=["1", 1], identity=["2", 0], reference=["4", 0],
                text=POSITIVE, negative=NEGATIVE, sampling=PACK_SAMPLING)
    return prompt


def reproduce_release() -> dict:
    """The released recipe on SD2.1-base, then the routes with the authors' sampling. The prompts read
    Learn ID Token's clip output, so they find the new embedding in the same run."""
    prompt = {
        "1": node("CheckpointLoaderSimple", "Load Checkpoint (SD2.1 base)", ckpt_name=CHECKPOINTS["sd2"]),
        "2": node("LoadImage", "Reference photo", image=PHOTO),
        "3": node("IDEA_FaceIDEmbed", images=["2", 0], face_selection="largest", face_index=0, crop_size=512,
                  framing="face", **FACE),
        "4": node("IDEA_IDEnhancer", face_embedding=["3", 0], clip=["1", 1], num_tokens=2, seed=0,
                  train_enhancer=False),
        "33": node("IDEA_LearnIDToken", model=["1", 0], clip=["1", 1], vae=["1", 2], images=["3", 1],
                   identity=["4", 0], name=RELEASED_NAME, steps=320, batch_size=8, learning_rate=0.0015, seed=0,
                   train_enhancer="from identity", resolution=0, gradient_checkpointing="off", precision="fp32",
                   save_every=0, resume=True),
        "34": node("PreviewImage", "Training loss", images=["33", 1]),
    }
    route_nodes(prompt, model=["1", 0], clip=["33", 2], identity=["33", 0], reference=["3", 0],
                text=RELEASED_PROMPT, negative="", sampling=RELEASED_SAMPLING)
    return prompt


# ---- notes ----

LIKENESS_LINE = ("Each **Likeness** box shows, for its route's pictures, the cosine similarity of each face to "
                 "the reference photo's face and their mean: higher is more alike (compare numbers of one face "
                 "pack only; a picture without a face counts as a miss).")


def compare_notes() -> dict:
    return {"readme": note("Read me: compare route A and route B", f"""
## Compare route A and route B for a learned person (SD1.5)
Which way of generating makes **your** person? **Compare route A and route B (ID-EA)** draws one prompt,
seed and latent ({IMAGES_PER_ROUTE} pictures) three ways: **route A**, the learned words `embedding:{NAME}`
alone (Apply ID-Adapter at weight 0 leaves the model as loaded: what the authors' script does, and works
in any ComfyUI), and **route B**, Apply ID-Adapter at weight 0.5 and at 1 (the conditioning the words were
trained under; the other workflows' default). Its settings hold for all three (`value` is the CFG); \
double-click it to see inside.

{models_note(checkpoint_line("sd1", "the one the identity was trained on"), FACE_PACK_LINE)}

**The identity**, both files written by Learn ID Token (template **1**):
{result_lines(NAME)}

**Reference photo** of the person in `ComfyUI/input/`, for the likeness numbers only. More photos give a
steadier reference: join Load Image nodes with Image Batch nodes into FaceID Embed's `images`.

**How to choose.** {LIKENESS_LINE} Take the route whose pictures look most like the person **and**
still follow the prompt; queue again for new seeds (the seed changes after every run, the same for all
three routes). Then use that weight in Apply ID-Adapter (weight 0 is route A, exactly).
""", 860, 440)}


def reproduce_notes() -> dict:
    return {
        "readme": note("Read me: reproduce the authors' released run", f"""
## Reproduce the authors' released run (SD2.1 base)
Queue once: the person is learned with the released recipe on the authors' base model, then
**Compare route A and route B (ID-EA)** draws them as the authors' script did (**route A**: the learned
words alone) next to **route B** (with Apply ID-Adapter at weight 0.5 and 1), with their sampling.

{models_note(checkpoint_line("sd2", "the authors' base model"), FACE_PACK_LINE)}

**Photos** of the person, in `ComfyUI/input/` or uploaded in **Reference photo**. More photos (two to five
help): add a Load Image per photo and join them with Image Batch nodes (image1: the photos so far,
image2: the new one) into FaceID Embed's `images`.

**Queue.** Learn ID Token saves
{result_lines(RELEASED_NAME)}

`resume` is on: queueing again reuses the saved identity and draws new pictures (the seed changes after
every run, the same for every route).
""", 960, 330),
        "recipe": note("The released recipe, setting by setting", f"""
From the authors' repository (Whslee/ID-EA: its README's commands, train.py, test.py):
- **checkpoint** SD2.1 base (`stabilityai/stable-diffusion-2-1-base`)
- **framing** `face`: their images are face-filling portraits
- **2 tokens** (`--n_persudo_tokens 2`)
- **Enhancer not trained** (ID-Enhancer `train_enhancer` off): train.py never optimises it
- **320 steps**, **batch 8**, **learning rate 0.0015** × 8 (`--scale_lr`)
- **fp32** (no mixed precision), **512 px** (train.py's default)
- **sampling** (test.py): DPM-Solver++ 2M (`dpmpp_2m`; `sgm_uniform` spaces the steps as diffusers
  does), **50 steps**, **CFG 7.5** (`value`), no negative prompt, `a photo of a {{}} person`
- {IMAGES_PER_ROUTE} pictures a route (they drew 32 a prompt)

{LIKENESS_LINE}
""", 380, 360),
    }


# ---- layouts ----

OUTPUT_COLUMN = [str(k) for k in range(OUTPUTS, OUTPUTS + 6)]  # each route's pictures, then its likeness


def compare_layout(ids: dict | None = None) -> dict:
    """The photo, checkpoint and identity feed the blueprint node from the left; each route's pictures
    and likeness stand in one column on the right, in the order of the blueprint's outputs."""
    compare = (ids or {}).get("compare", "compare")
    checkpoint, identity, photo, face = "1", "2", "3", "4"  # compare_routes' node ids
    inputs_row = 540  # canvas y where the photo, FaceID Embed and the blueprint node start, below the Read-me
    flow = columns(
        photo=wide(at("note:readme", span=True), at(photo, inputs_row), gap=60),
        face_checkpoint_identity=wide(at(face, inputs_row), checkpoint, identity, gap=80),
        routes=wide(at(compare, inputs_row), gap=80),
        outputs=[at(k, TOP) for k in OUTPUT_COLUMN],
    )
    groups = [group("1 · The person and the checkpoint", COLORS["photos"], photo, face, checkpoint, identity),
              group("2 · Three routes", COLORS["generate"], compare),
              group("3 · Pictures and likeness of each route", COLORS["check"], *OUTPUT_COLUMN)]
    return layout(flow, groups, compare_notes(), sizes=OUTPUT_SIZES)


class ReproduceRows:
    """Where boxes start in workflow 7 (canvas y; each box starts no higher): workflow 1's rows on the
    left, the reference's lane along the top, the checkpoint's MODEL and VAE lanes along the bottom."""
    FACE_SIDE = 420  # the photo and FaceID Embed, below the Read-me
    CHECKPOINT = 1110  # Load Checkpoint, below the face side
    ENHANCER = 540
    LEARN = 510
    REFERENCE = 417  # the Reroute that hands the reference down to the blueprint node
    LOSS = 860  # the loss curve, below the wires into the blueprint node
    MODEL_AND_VAE = 1120  # the Reroutes that hand the checkpoint's MODEL and VAE up to the blueprint node
    ROUTES = 700  # the blueprint node


def reproduce_layout(ids: dict | None = None) -> dict:
    """Workflow 1's layout on the left; the reference runs along the top to a Reroute right of Learn
    ID Token, the checkpoint's MODEL and VAE along the bottom to Reroutes a column further, and they
    hand them down or up to the blueprint node; the loss curve sits below the wires into the
    blueprint; the pictures and likeness of each route on the right, in the order of the
    blueprint's outputs."""
    compare = (ids or {}).get("compare", "compare")
    checkpoint, photo, face, enhancer, learn, loss = "1", "2", "3", "4", "33", "34"  # reproduce_release's ids
    y = ReproduceRows
    flow = columns(
        photo=wide(at("note:readme", span=True), at(photo, y.FACE_SIDE), gap=60),
        face_and_checkpoint=wide(at(face, y.FACE_SIDE), at(checkpoint, y.CHECKPOINT), gap=60),
        enhancer=wide(at(enhancer, y.ENHANCER), gap=150),
        learn=wide(at("note:recipe", TOP), at(learn, y.LEARN), gap=40),
        reference_and_loss=wide(at("R_ref", y.REFERENCE), at(loss, y.LOSS), gap=40),
        model_and_vae=wide(at("R_model", y.MODEL_AND_VAE), "R_vae", gap=60),
        routes=wide(at(compare, y.ROUTES), gap=80),
        outputs=[at(k, TOP) for k in OUTPUT_COLUMN],
    )
    groups = [group("1 · Photo and checkpoint", COLORS["photos"], photo, face, checkpoint),
              group("2 · Learn with the released recipe", COLORS["train"], enhancer, learn),
              group("3 · Route A as the authors drew it, and route B", COLORS["generate"], "R_ref", "R_model", "R_vae",
                    loss, compare),
              group("4 · Pictures and likeness of each route", COLORS["check"], *OUTPUT_COLUMN)]
    reroutes = [reroute((face, 0), ("R_ref",), (compare, "reference")),
                reroute((checkpoint, 0), ("R_model",), (compare, "model")),
                reroute((checkpoint, 2), ("R_vae",), (compare, "vae"))]
    return layout(flow, groups, reproduce_notes(), reroutes=reroutes, sizes=OUTPUT_SIZES)
