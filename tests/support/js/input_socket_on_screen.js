// The first node of a type moved to the canvas's top left corner at zoom 1 (set at once: Fit View and
// centring animate in newer frontends); the screen point of its input socket, where a tooltip is asked for.
async ([type, slot]) => {
  const node = app.graph.nodes.find(n => n.type === type);
  const ds = app.canvas.ds;
  ds.scale = 1;
  ds.offset = [0, 0];
  node.pos = [120, 120];
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const [x, y] = ds.convertOffsetToCanvas(node.getConnectionPos(true, slot));
  const box = app.canvas.canvas.getBoundingClientRect();
  return [box.left + x, box.top + y];
}
