// Closes every toast through the extension API (removeAll up to 1.49, dismissAll from 1.58).
() => { const t = app.extensionManager.toast; (t.removeAll || t.dismissAll).call(t); }
