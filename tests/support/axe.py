"""axe-core (kept in tests/support/vendor, never served by the dashboard) for browser tests: inject it with
``context.add_init_script(path=str(AXE))``, then ``axe(page)`` lists the WCAG 2.1 A/AA violations."""

from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def axe(page) -> list[dict]:
    assert page.evaluate("() => !!window.axe"), "axe-core was not injected into this context"
    return page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map((v) =>
        ({id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5)}))""")
