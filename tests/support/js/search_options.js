// The texts of the results the node search box lists, whitespace collapsed.
() => Array.from(document.querySelectorAll('[role=option]')).filter(o => o.getClientRects().length)
  .map(o => o.innerText.replace(/\s+/g, ' ').trim())
