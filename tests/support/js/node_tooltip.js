// The text of the node tooltip on screen, or null: what hovering a socket shows.
() => { const t = document.querySelector('.node-tooltip');
  return t && t.getClientRects().length ? t.innerText.trim() : null; }
