"""Workflow 5 of tools/make_workflows.py: two saved identities in one picture, each on its own half.

Each person's prompt is adapted with their own identity by Apply ID-Adapter to Conditioning and
restricted to their half (Conditioning (Set Area with Percentage)); a background prompt covers the
whole picture; one sampler; each person's likeness is scored on their own face (face_index 0 is the
left face, 1 the right).
"""
from __future__ import annotations

from .workflow_parts import (CFG, CHECKPOINTS, COLORS, FACE_PACK_LINE, NEGATIVE, TOP, at, checkpoint_line, columns,
                            group, layout, models_note, node, note, reroute, result_lines, wide)

PEOPLE = ("person_a", "person_b")  # the two identities' names: files and `embedding:NAME`
PHOTOS = ("person_a.png", "person_b.png")
SIZE = (768, 512)  # width, height: side by side, each half 384 px wide
BACKGROUND = "two friends standing side by side in a sunny park, natural light, detailed faces"
PERSON_PROMPTS = ("a photo of embedding:person_a person, smiling, detailed face",
                  "a photo of embedding:person_b person, detailed face")
# node ids: checkpoint 1; per person prompt, identity, adapted prompt, half (2..5 A, 6..9 B);
# background 10, negative 11, the two combines 12 and 13, latent 14, sampler 15, decode 16, save 17;
# per person reference photo, FaceID Embed, likeness (18..20 A, 21..23 B)
CHECK_MODELS = ("18", "19", "21", "22")  # what only the likeness check reads: photos, face pack


def two_people() -> dict:
    """Every output depends on the checkpoint and both identities; the picture does not wait for the
    reference photos and the face pack, which only the likeness check reads (CHECK_MODELS)."""
    width, height = SIZE
    face = {"model_pack": "antelopev2", "provider": "auto", "detection_size": 640}
    prompt = {"1": node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINTS["sd1"])}
    for k, (name, text) in enumerate(zip(PEOPLE, PERSON_PROMPTS)):
        who, i = "AB"[k], [str(2 + 4 * k + j) for j in range(4)]
        prompt[i[0]] = node("CLIPTextEncode", f"Prompt {who}", text=text, clip=["1", 1])
        prompt[i[1]] = node("IDEA_LoadIdentity", f"Identity {who}", identity_file=f"{name}.safetensors")
        prompt[i[2]] = node("IDEA_ApplyIDAdapterConditioning", f"Apply identity {who}", conditioning=[i[0], 0],
                            identity=[i[1], 0], weight=1.0)
        prompt[i[3]] = node("ConditioningSetAreaPercentage", f"{('Left', 'Right')[k]} half ({who})",
                            conditioning=[i[2], 0], width=0.5, height=1.0, x=0.5 * k, y=0.0, strength=1.0)
    prompt.update({
        "10": node("CLIPTextEncode", "Background (whole picture)", text=BACKGROUND, clip=["1", 1]),
        "11": node("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=["1", 1]),
        "12": node("ConditioningCombine", "Both people", conditioning_1=["5", 0], conditioning_2=["9", 0]),
        "13": node("ConditioningCombine", "People and background", conditioning_1=["10", 0],
                   conditioning_2=["12", 0]),
        "14": node("EmptyLatentImage", width=width, height=height, batch_size=1),
        "15": node("KSampler", seed=1234, steps=30, cfg=CFG["sd1"], sampler_name="dpmpp_2m", scheduler="karras",
                   denoise=1.0, model=["1", 0], positive=["13", 0], negative=["11", 0], latent_image=["14", 0]),
        "16": node("VAEDecode", samples=["15", 0], vae=["1", 2]),
        "17": node("SaveImage", images=["16", 0], filename_prefix="ID-EA/two_people"),
    })
    for k, photo in enumerate(PHOTOS):
        who, i = "AB"[k], [str(18 + 3 * k + j) for j in range(3)]
        prompt[i[0]] = node("LoadImage", f"Reference photo {who}", image=photo)
        prompt[i[1]] = node("IDEA_FaceIDEmbed", f"FaceID Embed {who}", images=[i[0], 0], face_selection="largest",
                            face_index=0, crop_size=512, **face)
        prompt[i[2]] = node("IDEA_FaceSimilarity", f"Likeness {who} ({('left', 'right')[k]} face)",
                            images=["16", 0], reference=[i[1], 0], **{**face, "model_pack": "same as reference"},
                            face_selection="index", face_index=k)
    return prompt


def picture_only(prompt: dict, offset: int = 0) -> dict:
    """The prompt without the likeness check (the reference photos, FaceID Embed and Face Similarity
    of each person): what the blueprint "Two people in one picture" is cut from; node ids raised by
    `offset`."""
    kept = {k for k in prompt if int(k) < int(CHECK_MODELS[0])}
    moved = lambda key: str(int(key) + offset)  # noqa: E731
    return {moved(k): {**prompt[k], "inputs": {name: [moved(v[0]), v[1]] if isinstance(v, list) else v
                                               for name, v in prompt[k]["inputs"].items()}}
            for k in sorted(kept, key=int)}


def notes() -> dict:
    a, b = PEOPLE
    return {
        "readme": note("Read me: two people in one picture", f"""
## Two people in one picture (SD1.5)
Each person's prompt gets their own identity (**Apply ID-Adapter to Conditioning**) and their own half
of the picture (**Conditioning (Set Area with Percentage)**: A on the left, x 0 and width 0.5; B on the
right, x 0.5); the background prompt covers all of it. Use Conditioning (Set Mask) for other shapes,
and Conditioning (Set Timestep Range) on a person's prompt to limit their identity to part of the steps.
`weight` 0 leaves a prompt as it was: route A, the learned words alone, as the authors generated.

{models_note(checkpoint_line("sd1", "the one both identities were trained on"), FACE_PACK_LINE)}

**The two people**, written by template **1** run once with `name` {a}, then {b} (press **R** afterwards
to refresh the lists):
{result_lines(a)}
{result_lines(b)}

ComfyUI only warns in its console when an `embedding:` file is missing, so keep both in place.

**Photos**, only for the likeness check: one of each person in `ComfyUI/input/` (`{PHOTOS[0]}`,
`{PHOTOS[1]}`). More photos of a person give a steadier reference: join Load Image nodes with Image
Batch into that person's FaceID Embed. The picture does not need them: with a photo or the face pack
missing it is still made, and the node that needs it is outlined in red with the message.
""", 1580, 300),
        "check": note("About the likeness numbers", """
Each **Likeness** node scores one face of the picture against that person's reference photo, and shows
the number on the node: `face_index` 0 is the leftmost face (A), 1 the next (B). Higher is more alike;
a missing face counts as a miss.
""", 210, 250),
    }


class Nodes:
    """The node ids two_people gives, by what each node is (A: the left person, B: the right)."""
    CHECKPOINT = "1"
    PROMPT_A, IDENTITY_A, ADAPTED_A, HALF_A = "2", "3", "4", "5"
    PROMPT_B, IDENTITY_B, ADAPTED_B, HALF_B = "6", "7", "8", "9"
    BACKGROUND, NEGATIVE, BOTH_PEOPLE, WITH_BACKGROUND = "10", "11", "12", "13"
    LATENT, SAMPLER, DECODE, SAVE = "14", "15", "16", "17"
    PHOTO_A, FACE_A, LIKENESS_A = "18", "19", "20"
    PHOTO_B, FACE_B, LIKENESS_B = "21", "22", "23"


class Rows:
    """Where boxes start in workflow 5 (canvas y; each box starts no higher)."""
    CHECKPOINT = 430  # below the Read-me
    PROMPTS = 560  # both people's prompts and identities, the negative prompt below them
    BACKGROUND = 500
    PERSON_A = 650  # person A's adapted prompt and left half
    PERSON_B = 828  # person B's, below
    BOTH_PEOPLE = 710  # the two halves combined, the latent below
    MODEL_LANE = 430  # the Reroute that turns the checkpoint's MODEL down to the sampler
    WITH_BACKGROUND = 520
    NEGATIVE_LANE = 1096  # the Reroute that turns the negative prompt up to the sampler
    VAE_LANE = 386  # the Reroute that turns the checkpoint's VAE down to VAE Decode
    SAMPLER = 482
    PHOTO_B = 804
    DECODE = 346  # between person A's FaceID Embed and person B's
    FACE_B = 482
    CHECK_NOTE = 808
    LIKENESS_A = 170
    SAVE = 504
    LIKENESS_B = 824


def two_people_layout() -> dict:
    """Three lanes keep the long wires clear of the nodes: the checkpoint's VAE and MODEL run along
    the top (the VAE above the MODEL, over the sampler into VAE Decode), the negative prompt's along
    the bottom; a Reroute node turns each towards its input. On the right, VAE Decode sits between
    person A's FaceID Embed and person B's, so the picture reaches each Likeness node without
    crossing the other person's reference."""
    n, y = Nodes, Rows
    flow = columns(
        checkpoint=wide(at("note:readme", TOP, span=True), at(n.CHECKPOINT, y.CHECKPOINT), gap=70),
        prompts=[at(n.PROMPT_A, y.PROMPTS), n.IDENTITY_A, n.PROMPT_B, n.IDENTITY_B, n.NEGATIVE],
        adapted=[at(n.BACKGROUND, y.BACKGROUND), at(n.ADAPTED_A, y.PERSON_A), at(n.ADAPTED_B, y.PERSON_B)],
        halves=[at(n.HALF_A, y.PERSON_A), at(n.HALF_B, y.PERSON_B)],
        both_people=wide(at(n.BOTH_PEOPLE, y.BOTH_PEOPLE), n.LATENT, gap=50),
        with_background=wide(at("R_model", y.MODEL_LANE), at(n.WITH_BACKGROUND, y.WITH_BACKGROUND),
                             at("R_negative", y.NEGATIVE_LANE), gap=50),
        sampler=wide(at(n.PHOTO_A, TOP), at("R_vae", y.VAE_LANE), at(n.SAMPLER, y.SAMPLER), at(n.PHOTO_B, y.PHOTO_B),
                     gap=50),
        decode=wide(at(n.FACE_A, TOP), at(n.DECODE, y.DECODE), at(n.FACE_B, y.FACE_B), at("note:check", y.CHECK_NOTE),
                    gap=50),
        save_and_likeness=[at(n.LIKENESS_A, y.LIKENESS_A), at(n.SAVE, y.SAVE), at(n.LIKENESS_B, y.LIKENESS_B)],
    )
    groups = [group("1 · Checkpoint, prompts and people", COLORS["train"], n.CHECKPOINT, n.PROMPT_A, n.IDENTITY_A,
                    n.PROMPT_B, n.IDENTITY_B, n.NEGATIVE),
              group("2 · Each person on their half of the picture", COLORS["photos"], n.BACKGROUND, n.ADAPTED_A,
                    n.ADAPTED_B, n.HALF_A, n.HALF_B, n.BOTH_PEOPLE, n.LATENT, "R_model", n.WITH_BACKGROUND,
                    "R_negative"),
              group("3 · Generate, save and check each face", COLORS["generate"], n.PHOTO_A, "R_vae", n.SAMPLER,
                    n.PHOTO_B, "note:check", n.FACE_A, n.DECODE, n.FACE_B, n.LIKENESS_A, n.SAVE, n.LIKENESS_B)]
    reroutes = [reroute((n.CHECKPOINT, 0), ("R_model",), (n.SAMPLER, 0)),
                reroute((n.NEGATIVE, 0), ("R_negative",), (n.SAMPLER, 2)),
                reroute((n.CHECKPOINT, 2), ("R_vae",), (n.DECODE, 1))]
    sizes = {"IDEA_LoadIdentity": [230, 0], "VAEDecode": [210, 0], "CheckpointLoaderSimple": [226, 0]}
    return layout(flow, groups, notes(), reroutes=reroutes, sizes=sizes)
