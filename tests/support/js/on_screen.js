// Where the canvas, and every node's and group's box, lie in the window (CSS px), and which element is
// on top at the middle of each node's title bar (a side bar, menu or dialog covering it would be).
() => {
  const ds = app.canvas.ds, c = app.canvas.canvas.getBoundingClientRect();
  const toScreen = ([x, y, w, h]) => { const a = ds.convertOffsetToCanvas([x, y]), b = ds.convertOffsetToCanvas([x + w, y + h]);
    return [c.left + a[0], c.top + a[1], b[0] - a[0], b[1] - a[1]]; };
  const nodes = app.canvas.graph.nodes.map(n => {
    const el = document.querySelector(`[data-node-id="${n.id}"]`);
    const b = el ? el.getBoundingClientRect() : null;
    const rect = b ? [b.left, b.top, b.width, b.height] : toScreen(Array.from(n.boundingRect));
    const top = document.elementFromPoint(rect[0] + rect[2] / 2, rect[1] + Math.min(12, rect[3] / 2));
    return {title: `${n.title} (#${n.id})`, rect,
            titleSeen: !!top && (top === app.canvas.canvas || (!!el && el.contains(top)))};
  });
  return {canvas: [c.left, c.top, c.width, c.height], scale: ds.scale, nodes,
          groups: app.canvas.graph.groups.map(g => ({title: g.title, rect: toScreen(Array.from(g._bounding))}))};
}
