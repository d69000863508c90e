"""Workflows 1 and 2 of tools/make_workflows.py in their blueprint versions: the same wiring with the
training and the generation each one subgraph node (tools/blueprints.py), so a newcomer sees the
checkpoint, the photo, two blueprint nodes and Save Image; the expanded workflows stay beside them
for those who want to see inside.
"""
from __future__ import annotations

from .workflow_parts import (COLORS, FACE_PACK_LINE, NAME, at, checkpoint_line, columns, group, layout, models_note,
                            note, result_lines, wide)

LIKENESS = "17"  # workflow 1's Face Similarity: not part of either blueprint, left out of this version
BY_NAME = {"learn": "learn", "generate": "generate"}  # before the cut: what the layout names them
CHECKPOINT, PHOTO, SAVE = "1", "2", "16"  # workflow 1's nodes that stay outside the blueprints
IDENTITY = PHOTO  # workflow 2's Load Identity takes the photo's id (tools/blueprints.saved_from_start)


def start_prompt(train_and_generate: dict) -> dict:
    """Workflow 1's prompt without its likeness check (Learn a person has no face-embedding output)."""
    return {k: v for k, v in train_and_generate.items() if k != LIKENESS}


def start_notes() -> dict:
    return {"readme": note("Read me: learn a person, then generate (blueprints)", f"""
## Learn a person from photos, then generate (SD1.5)
Two blueprint nodes do it all: **Learn a person (ID-EA)** trains the person on your checkpoint (320
steps) and **Generate with a person (ID-EA)** makes a new image of them, in one queue. Double-click a
blueprint node to see inside (workflow 1 without blueprints shows the same wiring); more blueprints
are in the node library under *Subgraph Blueprints*.

{models_note(checkpoint_line("sd1", "train and generate with the same one"), FACE_PACK_LINE)}

**Photo** of the person, in `ComfyUI/input/` or uploaded in **Reference photo**. More photos (two to five
help): join Load Image nodes with Image Batch nodes into `photos`. **Queue.** Learn a person saves
{result_lines(NAME)}

Set `name` for another person; `prompt` keeps `embedding:{NAME}`; `weight` 0 is route A (the words alone).
""", 760, 330)}


def start_layout(ids: dict = BY_NAME) -> dict:
    learn, generate = ids["learn"], ids["generate"]
    # the checkpoint level with Generate's inputs, Learn below their wires (canvas y where each starts)
    generate_row, learn_row = 430, 640
    flow = columns(
        photo_and_checkpoint=wide(at("note:readme", span=True), at(CHECKPOINT, generate_row), at(PHOTO, learn_row),
                                  gap=100),
        learn=wide(at(learn, learn_row), gap=100),
        generate=wide(at(generate, generate_row), gap=80),
        save=[at(SAVE, generate_row)],
    )
    groups = [group("1 · Photo and checkpoint", COLORS["photos"], PHOTO, CHECKPOINT),
              group("2 · Learn the person", COLORS["train"], learn),
              group("3 · Generate with it", COLORS["generate"], generate, SAVE)]
    return layout(flow, groups, start_notes())


def saved_notes() -> dict:
    return {"readme": note("Read me: generate with a learned person (blueprint)", f"""
## Generate with a learned person (SD1.5)
**Generate with a person (ID-EA)** makes a new image of a person learned before: choose them by name in
**Load Identity** and write the prompt with `embedding:{NAME}`. Its `weight` 0 is route A (the learned
words alone, as the authors generated).

{models_note(checkpoint_line("sd1", "the one the identity was trained on, or another of that base"))}

**The identity**, both files written by Learn a person (template **1**):
{result_lines(NAME)}

Press **R** to refresh the lists after training.
""", 700, 260)}


def saved_layout(ids: dict = BY_NAME) -> dict:
    generate = ids["generate"]
    # Load Identity level with Generate's inputs, the checkpoint below it (canvas y where each starts)
    generate_row, checkpoint_row = 360, 500
    flow = columns(
        models=wide(at("note:readme", span=True), at(IDENTITY, generate_row), at(CHECKPOINT, checkpoint_row), gap=100),
        generate=wide(at(generate, generate_row), gap=80),
        save=[at(SAVE, generate_row)],
    )
    groups = [group("1 · Models", COLORS["train"], IDENTITY, CHECKPOINT),
              group("2 · Generate", COLORS["generate"], generate, SAVE)]
    return layout(flow, groups, saved_notes())
