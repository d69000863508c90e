// In the open template browser, each card: the smallest element around a title that holds one
// picture, and whether that picture has loaded; with the dialog's text.
(titles) => {
  const dialog = Array.from(document.querySelectorAll('[role=dialog]')).find(d => d.getClientRects().length);
  const cards = {};
  for (const title of titles) {
    const label = Array.from(dialog.querySelectorAll('*')).find(e => e.children.length === 0 && e.innerText &&
      e.innerText.trim() === title);
    let card = label;
    while (card && card !== dialog && card.querySelectorAll('img').length === 0) card = card.parentElement;
    const pictures = card && card !== dialog ? Array.from(card.querySelectorAll('img')) : [];
    cards[title] = {shown: !!label, pictures: pictures.map(i => i.complete && i.naturalWidth > 0)};
  }
  return {text: dialog.innerText, cards};
}
