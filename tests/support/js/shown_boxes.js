// Helper included by shown_geometry.js and inside_blueprints.js (not run on its own). The boxes of the
// nodes as drawn (canvas units): a node's [data-node-id] element where the Vue renderer draws it, else
// LiteGraph's bounding box; the groups' frames (drawn on the canvas by both renderers).
const shownBoxes = (g) => {
  const ds = app.canvas.ds, c = app.canvas.canvas.getBoundingClientRect();
  const nodes = g.nodes.map(n => {
    const el = document.querySelector(`[data-node-id="${n.id}"]`);
    let rect = Array.from(n.boundingRect);
    if (el) {
      const b = el.getBoundingClientRect();
      rect = [(b.left - c.left) / ds.scale - ds.offset[0], (b.top - c.top) / ds.scale - ds.offset[1],
              b.width / ds.scale, b.height / ds.scale];
    }
    return {id: n.id, type: n.type, title: n.title, rect, dom: !!el,
            titled: n.constructor.title_mode !== LiteGraph.NO_TITLE};
  });
  return {nodes, links: [], groups: g.groups.map(gr => ({title: gr.title, rect: Array.from(gr._bounding)}))};
};
