"""Workflow 5 of tools/make_workflows.py: two saved identities in one picture, each on its own half.

Each person's prompt is adapted with their own identity by Apply ID-Adapter to Conditioning and
restricted to their half (Conditioning (Set Area with Percentage)); a background prompt covers the
whole picture; one sampler; each person's likeness is scored on their own face (face_index 0 is the
left face, 1 the right).
"""
from __future__ import annotations

from workflow_parts import (CFG, CHECKPOINTS, COLORS, FACE_PACK_LINE, NEGATIVE, at, checkpoint_line, group,
                            layout, models_note, node, note, reroute, result_lines, wide)

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


def two_people_layout() -> dict:
    """Three lanes keep the long wires clear of the nodes: the checkpoint's VAE and MODEL run along
    the top (the VAE above the MODEL, over the sampler into VAE Decode), the negative prompt's along
    the bottom; a Reroute node turns each towards its input. On the right, VAE Decode sits between
    person A's FaceID Embed and person B's, so the picture reaches each Likeness node without
    crossing the other person's reference."""
    columns = [
        wide(at("note:readme", 0, span=True), at("1", 430), gap=70),
        [at("2", 560), "3", "6", "7", "11"],
        [at("10", 500), at("4", 650), at("8", 828)],
        [at("5", 650), at("9", 828)],
        wide(at("12", 710), "14", gap=50),
        wide(at("R_model", 430), at("13", 520), at("R_negative", 1096), gap=50),
        wide(at("18", 0), at("R_vae", 386), at("15", 482), at("21", 804), gap=50),
        wide(at("19", 0), at("16", 346), at("22", 482), at("note:check", 808), gap=50),
        [at("20", 170), at("17", 504), at("23", 824)],
    ]
    groups = [group("1 · Checkpoint, prompts and people", COLORS["train"], "1", "2", "3", "6", "7", "11"),
              group("2 · Each person on their half of the picture", COLORS["photos"], "10", "4", "8", "5", "9",
                    "12", "14", "R_model", "13", "R_negative"),
              group("3 · Generate, save and check each face", COLORS["generate"], "18", "R_vae", "15", "21",
                    "note:check", "19", "16", "22", "20", "17", "23")]
    reroutes = [reroute(("1", 0), ("R_model",), ("15", 0)),
                reroute(("11", 0), ("R_negative",), ("15", 2)),
                reroute(("1", 2), ("R_vae",), ("16", 1))]
    sizes = {"IDEA_LoadIdentity": [230, 0], "VAEDecode": [210, 0], "CheckpointLoaderSimple": [226, 0]}
    return layout(columns, groups, notes(), reroutes=reroutes, sizes=sizes)
