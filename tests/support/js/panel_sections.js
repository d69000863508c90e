// The text of each visible innermost section: the errors panel's entries (1.49+).
() => Array.from(document.querySelectorAll('section')).filter(s => s.getClientRects().length
  && !s.querySelector('section')).map(s => s.innerText.replace(/\s+/g, ' ').trim()).filter(Boolean)
