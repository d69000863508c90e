// The shown boxes of the graph on the canvas (links left out: the wire rules are the classic canvas's).
async () => {
  /* include shown_boxes.js */
  await new Promise(r => setTimeout(r, 300));  // the Vue nodes lay themselves out
  return shownBoxes(app.canvas.graph);
}
