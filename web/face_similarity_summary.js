// Face Similarity shows its summary ("image 1: 0.78; mean 0.78 over 1/1 images with a face") on the
// node itself. The node sends the text as its UI output; the frontend has no generic text display,
// so this adds a read-only text box that is neither saved in the workflow nor sent with the prompt.
import { app } from "../../scripts/app.js";

const NODE = "IDEA_FaceSimilarity";
const WIDGET = "summary_text";

app.registerExtension({
  name: "ComfyUI-ID-EA.FaceSimilaritySummary",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const box = document.createElement("textarea");
      box.className = "comfy-multiline-input";
      box.readOnly = true;
      box.placeholder = "the likeness appears here after a run";
      const widget = this.addDOMWidget(WIDGET, "textarea", box, {
        getValue: () => box.value,
        setValue: (value) => { box.value = value ?? ""; },
        getMinHeight: () => 56,
        serialize: false, // not sent with the prompt
      });
      widget.serialize = false; // not saved in the workflow
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      const widget = this.widgets?.find((w) => w.name === WIDGET);
      if (widget) widget.value = (output?.text ?? []).join("\n");
    };
  },
});
