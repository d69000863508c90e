// Registers (once per page) an extension whose afterConfigureGraph hook records the node types the
// frontend itself reports missing, in window.__ideaMissing.
() => {
  if (window.__ideaHooked) return;
  window.__ideaHooked = true;
  window.__ideaMissing = null;
  app.registerExtension({name: 'idea.tests.missingNodes',
    afterConfigureGraph(missing) {
      window.__ideaMissing = (missing || []).map(m => typeof m === 'string' ? m : m.type);
    }});
}
