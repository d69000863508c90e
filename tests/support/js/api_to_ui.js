// The UI workflow the frontend makes of an API prompt (app.loadApiJson, then LiteGraph's arrange and
// serialize); null when the frontend dropped a node.
async ([prompt, name]) => {
  app.graph.clear();
  await app.loadApiJson(prompt, name);  // async from frontend 1.49
  if (app.graph.nodes.length !== Object.keys(prompt).length) return null;
  app.graph.arrange();
  await new Promise(r => requestAnimationFrame(r));
  return JSON.parse(JSON.stringify(app.graph.serialize()));
}
