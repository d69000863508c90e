// Two nodes show their text on the node itself: Face Similarity its summary ("image 1: 0.78; mean
// 0.78 over 1/1 images with a face"), FaceID Embed how well the reference photos agree. Each node
// sends the text as its UI output; this adds a read-only text box that is neither saved in the
// workflow nor sent with the prompt. Face Similarity's box is there from the start (its number is the
// node's point). FaceID Embed's is added at its first run, so the node keeps its size in a saved
// workflow's layout until it has something to say.
//
// Only the frontend's supported extension surface is used, so the same file works in the classic
// canvas and in the Vue node renderer ("Nodes 2.0") of frontends 1.32.9 to 1.58.1:
// - the `nodeCreated` hook, per node instance (no prototype patching, which the frontend's docs mark
//   deprecated); the instance's `onExecuted` receives the node's UI output, as the frontend's own
//   core extensions (Image Crop, Image Compositor) use it;
// - the `onNodeOutputsUpdated` hook, which hands over restored outputs (a workflow tab switched back
//   to, a finished job opened from the queue), so the text comes back with them;
// - a DOM widget whose type the Vue renderer has no component of its own for: it then mounts this
//   element in the node (a "textarea" widget would be replaced by the renderer's own text area, which
//   reads the value from its own store and stays empty);
// - `hideOutputImages` on every node of this pack: none of them outputs a picture to preview, and the
//   frontend keeps a Load Image's input preview under a node id, so a pack node that comes to hold
//   that id (another workflow opened in the tab) would show it, or under Vue an "Image failed to
//   load" box when the picture is missing.
import { app } from "../../scripts/app.js";

const PACK_PREFIX = "IDEA_";
const WIDGET_TYPE = "idea_node_text";
const TEXT_BOXES = {
  IDEA_FaceSimilarity: { widget: "summary_text", placeholder: "the likeness appears here after a run", fromStart: true },
  IDEA_FaceIDEmbed: { widget: "agreement_text", placeholder: "", fromStart: false },
};

function nodeClass(node) {
  return node?.constructor?.comfyClass ?? node?.comfyClass ?? node?.type;
}

function addTextBox(node, spec) {
  const box = document.createElement("textarea");
  box.className = "comfy-multiline-input";
  box.readOnly = true;
  box.placeholder = spec.placeholder;
  box.setAttribute("aria-label", spec.widget);
  const widget = node.addDOMWidget(spec.widget, WIDGET_TYPE, box, {
    getValue: () => box.value,
    setValue: (value) => { box.value = value ?? ""; },
    getMinHeight: () => 56,
    serialize: false, // not sent with the prompt
  });
  widget.serialize = false; // not saved in the workflow
  return widget;
}

/** Shows the text of a UI output ({text: [...]}) in the node's box, adding the box at the first text. */
function showText(node, output) {
  const spec = TEXT_BOXES[nodeClass(node)];
  if (!spec) return;
  const text = (output?.text ?? []).join("\n");
  let widget = node.widgets?.find((w) => w.name === spec.widget);
  if (!widget && text) {
    widget = addTextBox(node, spec);
    const [width, height] = node.computeSize();
    node.setSize([Math.max(node.size[0], width), Math.max(node.size[1], height)]);
  }
  if (widget) widget.value = text;
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "ComfyUI-ID-EA.NodeText",
  nodeCreated(node) {
    if (!String(nodeClass(node) ?? "").startsWith(PACK_PREFIX)) return;
    node.hideOutputImages = true;
    const spec = TEXT_BOXES[nodeClass(node)];
    if (!spec) return;
    if (spec.fromStart) addTextBox(node, spec);
    const onExecuted = node.onExecuted;
    node.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      showText(this, output);
    };
  },
  onNodeOutputsUpdated(outputs) {
    for (const [id, output] of Object.entries(outputs ?? {})) {
      if (output?.text) showText(app.graph?.getNodeById?.(id), output);
    }
  },
});
