// The shown boxes inside each blueprint node of the root graph, each opened as a user does (double
// click: LGraphCanvas.openSubgraph), then the root graph shown again.
async () => {
  /* include shown_boxes.js */
  const root = app.canvas.graph, out = [];
  for (const node of root.nodes.filter(n => n.subgraph)) {
    app.canvas.openSubgraph(node.subgraph, node);
    await new Promise(r => setTimeout(r, 600));
    out.push({blueprint: node.title, ...shownBoxes(app.canvas.graph)});
    app.canvas.setGraph(root);
    await new Promise(r => setTimeout(r, 300));
  }
  return out;
}
