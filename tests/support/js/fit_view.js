// The frontend's own Fit View command animates; this sets the same view at once. The nodes'
// bounding boxes (title bar included) fill `zoom` of the canvas, leaving room for the side bar.
async (zoom) => {
  app.canvas.deselectAll();
  const rects = app.graph.nodes.map(n => n.boundingRect);
  if (rects.length) {
    const x0 = Math.min(...rects.map(r => r[0])), y0 = Math.min(...rects.map(r => r[1]));
    const x1 = Math.max(...rects.map(r => r[0] + r[2])), y1 = Math.max(...rects.map(r => r[1] + r[3]));
    app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom});
  }
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}
