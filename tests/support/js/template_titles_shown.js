// True once the open template browser lists every one of `titles`.
(titles) => { const d = Array.from(document.querySelectorAll('[role=dialog]')).find(d => d.getClientRects().length);
            return d && titles.every(t => d.innerText.includes(t)); }
