// The text of the tooltip on screen, or null: what hovering a socket shows. The classic canvas draws
// it in its `.node-tooltip` element; the Vue node renderer's slots show an element with the ARIA
// role `tooltip` (it may render one twice: the first shown one is read).
() => {
  const shown = [...document.querySelectorAll('.node-tooltip, [role="tooltip"]')]
    .filter(t => t.getClientRects().length && t.innerText.trim());
  return shown.length ? shown[0].innerText.trim() : null;
}
