// A node's box on screen, after centring the view on it at scale 1 (in the graph the canvas shows: the
// root, or a subgraph opened on it). A workflow opens fitted to the window, where 1.32.9's 1 px outline
// is drawn too thin to read.
(id) => {
  const node = app.canvas.graph.getNodeById(id);
  app.canvas.ds.scale = 1;
  app.canvas.centerOnNode(node);
  app.canvas.setDirty(true, true);
  const [x, y, w, h] = node.boundingRect, ds = app.canvas.ds, r = app.canvas.canvas.getBoundingClientRect();
  const a = ds.convertOffsetToCanvas([x, y]), b = ds.convertOffsetToCanvas([x + w, y + h]);
  return [r.left + a[0], r.top + a[1], b[0] - a[0], b[1] - a[1]];
}
