// True once the card titled `title` in the open template browser shows its picture (a card's
// picture loads once it is scrolled into view).
(title) => { const d = Array.from(document.querySelectorAll('[role=dialog]')).find(d => d.getClientRects().length);
  let card = Array.from(d.querySelectorAll('*')).find(e => e.children.length === 0 && e.innerText && e.innerText.trim() === title);
  while (card && card !== d && card.querySelectorAll('img').length === 0) card = card.parentElement;
  return !!card && card !== d && Array.from(card.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0); }
