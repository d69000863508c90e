// Loads a UI workflow as a file drop does (app.loadGraphData). Node types are checked at every level:
// the root graph's, and those inside its subgraphs (whose own type is the subgraph definition's id).
async ([wf, name]) => {
  window.__ideaMissing = null;
  const subgraphs = (wf.definitions && Array.isArray(wf.definitions.subgraphs)) ? wf.definitions.subgraphs : [];
  const defined = new Set(subgraphs.map(s => s.id));
  const types = [wf, ...subgraphs].flatMap(g => Array.isArray(g.nodes) ? g.nodes : []).map(n => n && n.type);
  const unregistered = [...new Set(types.filter(t => !defined.has(t) && !(t in LiteGraph.registered_node_types)))];
  let thrown = null;
  try { await app.loadGraphData(wf, true, true, name); } catch (e) { thrown = String((e && e.stack) || e); }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {unregistered, hook: window.__ideaMissing, nodes: app.graph.nodes.length, thrown};
}
