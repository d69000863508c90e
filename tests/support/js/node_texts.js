// The text boxes the user sees on node `id`: each visible <textarea> whose middle lies in the node's box
// on screen and is the topmost element there (not covered by another node, a menu or a dialog). The view
// is first set to scale 1 and centred on the node, where every frontend draws its widgets.
async (id) => {
  const node = app.canvas.graph.getNodeById(id);
  app.canvas.ds.scale = 1;
  app.canvas.centerOnNode(node);
  app.canvas.setDirty(true, true);
  await new Promise(r => setTimeout(r, 400));
  const el = document.querySelector(`[data-node-id="${id}"]`);
  let box;
  if (el) {
    const b = el.getBoundingClientRect();
    box = [b.left, b.top, b.right, b.bottom];
  } else {
    const [x, y, w, h] = node.boundingRect, ds = app.canvas.ds, c = app.canvas.canvas.getBoundingClientRect();
    const a = ds.convertOffsetToCanvas([x, y]), z = ds.convertOffsetToCanvas([x + w, y + h]);
    box = [c.left + a[0], c.top + a[1], c.left + z[0], c.top + z[1]];
  }
  return Array.from(document.querySelectorAll('textarea')).filter(t => {
    const b = t.getBoundingClientRect();
    if (!b.width || !b.height) return false;
    const cx = b.left + b.width / 2, cy = b.top + b.height / 2;
    if (cx < box[0] || cx > box[2] || cy < box[1] || cy > box[3]) return false;
    const top = document.elementFromPoint(cx, cy);
    return !!top && (top === t || t.contains(top));
  }).map(t => t.value);
}
