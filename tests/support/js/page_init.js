// Added to every page before the app starts: sets localStorage (%(storage)s, filled in by Python:
// banners off), and records the text of every toast and status message the page speaks into
// window.__ideaToasts, so a load's messages can be read after they fade.
(() => {
  for (const [k, v] of Object.entries(%(storage)s)) localStorage.setItem(k, v);
  window.__ideaToasts = [];
  const said = new WeakMap();
  const SPOKEN = '[role=alert], [role=status]';
  const grab = () => {
    for (const el of document.querySelectorAll(SPOKEN)) {
      if (el.querySelector(SPOKEN) || el.closest('[role=dialog], section')) continue;
      const text = el.innerText.replace(/\s+/g, ' ').trim();
      const box = el.getBoundingClientRect();
      if (!text || box.width < 2 || box.height < 2 || said.get(el) === text) continue;
      said.set(el, text);
      window.__ideaToasts.push(text);
    }
  };
  new MutationObserver(grab).observe(document, {childList: true, subtree: true, characterData: true});
})();
