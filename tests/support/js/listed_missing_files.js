// Every row that lists one missing file: its anchor is the row's "Copy URL" button (a file with a
// download link) or "Copy model name" (1.49+, a file the frontend knows no source for). The row is
// the largest ancestor of the anchor holding no other anchor, inside its section or dialog.
(fileName) => {
  const isAnchor = b => /^(Copy URL|Copy model name)$/.test((b.getAttribute('aria-label') || b.innerText).trim());
  const anchors = Array.from(document.querySelectorAll('button')).filter(b => b.getClientRects().length && isAnchor(b));
  const copyUrls = anchors.filter(b => (b.getAttribute('aria-label') || b.innerText).trim() === 'Copy URL');
  const named = new RegExp(fileName);
  return anchors.map(anchor => {
    let row = anchor;
    const within = anchor.closest('section, [role=dialog]') || document.body;
    while (row.parentElement && row.parentElement !== within && within.contains(row.parentElement)
           && anchors.filter(a => row.parentElement.contains(a)).length === 1) row = row.parentElement;
    const lines = row.innerText.split('\n').map(l => l.trim()).filter(Boolean);
    return {lines, copyUrl: copyUrls.indexOf(anchor), named: lines.some(l => named.test(l))};
  });
}
