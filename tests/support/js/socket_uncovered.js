// Whether a pointer at (x, y) rests on the node's own socket: the canvas itself there (classic), or an
// element of that node ([data-node-id], Vue renderer). False while anything else covers the point
// (the search box closes with a fade).
([x, y, type]) => {
  const at = document.elementFromPoint(x, y);
  if (!at) return false;
  if (at.tagName === 'CANVAS') return true;
  const node = app.graph.nodes.find(n => n.type === type);
  return !!node && !!at.closest(`[data-node-id="${node.id}"]`);
}
