// The text of every visible dialog, whitespace collapsed: what the user is told.
() => Array.from(document.querySelectorAll('[role=dialog]')).filter(d => d.getClientRects().length)
  .map(d => d.innerText.replace(/\s+/g, ' ').trim())
