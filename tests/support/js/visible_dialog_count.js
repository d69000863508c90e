// How many dialogs are on screen (a hidden dialog element has no client rects).
() => Array.from(document.querySelectorAll('[role=dialog]')).filter(d => d.getClientRects().length).length
