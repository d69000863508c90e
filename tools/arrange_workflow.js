// Lays out the graph loaded in the frontend (tools/make_workflows.py evaluates this in the page).
// Columns run left to right (a column may be {items, gap} to leave a wider gap after it, where many
// wires change height), each a stack of nodes and notes from the top; an entry may ask for a
// lowest top edge (`y`) so that wires find a free lane, and may `span` the following columns (its
// width then does not widen its own column). Groups are framed around their members;
// notes become MarkdownNote nodes. Coordinates are those of the nodes' outer boxes (title bar
// included). `reroutes` sends a wire through Reroute nodes that the columns place by name, so it can
// go around the rest; wires of one origin may share a Reroute and fan out from it. Every node and
// note is at least `widthSlack` times as wide as this frontend measures it (newer frontends measure
// text wider), and at least as large as the Vue node renderer draws it (`vueSizes`, measured by
// tools/vue_sizes.py: a note and a blueprint node by title, any other node by type and title, else by
// type; a note keeps the width its spec gives), so that both renderers draw the same boxes. No view
// is saved: every tested frontend then fits the graph to the window it opens in. Returns the
// workflow as the frontend's Export saves it.
async ({columns, groups, notes, sizes, vueSizes, gap, reroutes, widthSlack}) => {
  // FOOT: room below a group's lowest node, as below every node (gap.y): the Vue renderer adds an
  // "Issues" footer (24 px) to a node whose file is missing
  const g = app.graph, TITLE = LiteGraph.NODE_TITLE_HEIGHT, PAD = 20, HEAD = 46, FOOT = gap.y;
  const vue = (n) => (n.subgraph || ['Note', 'MarkdownNote'].includes(n.type) ? vueSizes[n.title]
    : vueSizes[`${n.type}|${n.title}`] || vueSizes[n.type]) || [0, 0];
  const Group = LiteGraph.LGraphGroup || window.LGraphGroup;
  for (const group of [...g.groups]) g.remove(group);
  const placed = {}, rerouteNodes = {};
  for (const spec of reroutes) {
    let [from, slot] = [g.getNodeById(+spec.from[0]), spec.from[1]];
    for (const name of spec.via) {
      let r = rerouteNodes[name];
      if (!r) {  // a name used again is the same Reroute: the wires fan out from it
        r = LiteGraph.createNode('Reroute');
        g.add(r); r.size = r.computeSize(); rerouteNodes[name] = r;
        from.connect(slot, r, 0);
      }
      [from, slot] = [r, 0];
    }
    const target = g.getNodeById(+spec.to[0]), input = spec.to[1];  // an input's index, or its name
    from.connect(slot, target, typeof input === 'number' ? input : target.inputs.findIndex(i => i.name === input));
  }
  const make = (key) => {
    if (rerouteNodes[key]) return rerouteNodes[key];
    if (!key.startsWith('note:')) {
      const n = g.getNodeById(+key), least = n.computeSize(), [w, h] = sizes[n.type] || [0, 0], [vw, vh] = vue(n);
      n.size = [Math.round(Math.max(w, least[0] * widthSlack, vw)), Math.round(Math.max(h, least[1], vh))];
      return n;
    }
    const spec = notes[key.slice(5)], n = LiteGraph.createNode('MarkdownNote');
    n.title = spec.title; n.widgets[0].value = spec.text; g.add(n);
    n.size = [Math.round(Math.max(spec.size[0], n.computeSize()[0] * widthSlack)), Math.max(spec.size[1], vue(n)[1])];
    return n;
  };
  let x = 0;
  for (const spec of columns) {
    const column = Array.isArray(spec) ? spec : spec.items, after = Array.isArray(spec) ? gap.x : spec.gap;
    let top = 0, width = 0;
    for (const entry of column) {
      const {item: key, y: at = 0, span = false} = typeof entry === 'string' ? {item: entry} : entry;
      const n = make(key);
      top = Math.max(top, at);
      n.pos = [x, top + TITLE];
      placed[key] = n;
      top += TITLE + n.size[1] + gap.y;
      if (!span) width = Math.max(width, n.size[0]);
    }
    x += width + after;
  }
  for (const spec of groups) {
    const rects = spec.items.map(k => [placed[k].pos[0], placed[k].pos[1] - TITLE, ...placed[k].size])
      .map(([x, y, w, h]) => [x, y, w, h + TITLE]);
    const x0 = Math.min(...rects.map(r => r[0])) - PAD, y0 = Math.min(...rects.map(r => r[1])) - HEAD;
    const x1 = Math.max(...rects.map(r => r[0] + r[2])) + PAD, y1 = Math.max(...rects.map(r => r[1] + r[3])) + FOOT;
    const group = new Group(spec.title);
    group.color = spec.color;
    group.pos = [x0, y0];
    group.size = [x1 - x0, y1 - y0];
    g.add(group);
  }
  g.setDirtyCanvas(true, true);
  const {workflow} = await app.graphToPrompt();
  delete workflow.extra.ds;
  return JSON.parse(JSON.stringify(workflow));
}
