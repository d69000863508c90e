// Two nodes show their text on the node itself: Face Similarity its summary ("image 1: 0.78; mean
// 0.78 over 1/1 images with a face"), FaceID Embed how well the reference photos agree. Each node
// sends the text as its UI output; the frontend has no generic text display, so this adds a
// read-only text box that is neither saved in the workflow nor sent with the prompt.
// Face Similarity's box is there from the start (its number is the node's point). FaceID Embed's is
// added at its first run, so the node keeps its size in a saved workflow's layout until it has
// something to say.
import { app } from "../../scripts/app.js";

const NODES = {
  IDEA_FaceSimilarity: { widget: "summary_text", placeholder: "the likeness appears here after a run", fromStart: true },
  IDEA_FaceIDEmbed: { widget: "agreement_text", placeholder: "", fromStart: false },
};

function addTextBox(node, spec) {
  const box = document.createElement("textarea");
  box.className = "comfy-multiline-input";
  box.readOnly = true;
  box.placeholder = spec.placeholder;
  const widget = node.addDOMWidget(spec.widget, "textarea", box, {
    getValue: () => box.value,
    setValue: (value) => { box.value = value ?? ""; },
    getMinHeight: () => 56,
    serialize: false, // not sent with the prompt
  });
  widget.serialize = false; // not saved in the workflow
  return widget;
}

app.registerExtension({
  name: "ComfyUI-ID-EA.NodeText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const spec = NODES[nodeData.name];
    if (!spec) return;
    if (spec.fromStart) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        const result = onNodeCreated?.apply(this, arguments);
        addTextBox(this, spec);
        return result;
      };
    }
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      const text = (output?.text ?? []).join("\n");
      let widget = this.widgets?.find((w) => w.name === spec.widget);
      if (!widget && text) {
        widget = addTextBox(this, spec);
        const [width, height] = this.computeSize();
        this.setSize([Math.max(this.size[0], width), Math.max(this.size[1], height)]);
      }
      if (widget) widget.value = text;
      this.setDirtyCanvas?.(true, true);
    };
  },
});
