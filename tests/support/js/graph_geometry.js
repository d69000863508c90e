// The loaded graph's geometry in canvas units: nodes' boxes, every wire's ends, groups' frames
// (the layout checks of tests/support/workflow_layout.py read it).
() => {
  const g = app.graph;
  const nodes = g.nodes.map(n => ({id: n.id, type: n.type, title: n.title, rect: Array.from(n.boundingRect),
                                   titled: n.constructor.title_mode !== LiteGraph.NO_TITLE}));
  const links = [];
  for (const n of g.nodes) for (const [slot, input] of (n.inputs || []).entries()) {
    if (input.link == null) continue;
    const link = g.links.get ? g.links.get(input.link) : g.links[input.link];
    const origin = g.getNodeById(link.origin_id);
    links.push({id: link.id, origin: origin.id, origin_slot: link.origin_slot, target: n.id, target_slot: slot,
                start: Array.from(origin.getConnectionPos(false, link.origin_slot)),
                end: Array.from(n.getConnectionPos(true, slot))});
  }
  const groups = g.groups.map(gr => ({title: gr.title, rect: Array.from(gr._bounding)}));
  return {nodes, links, groups};
}
