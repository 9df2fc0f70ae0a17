"""A page as a blind donor's screen reader and a keyboard-only donor meet it, for the browser tests
(`problems`): each rule below is one a person is hurt by when it fails, checked in the rendered
page (chromium's own computed styles and layout), not in the template's text.

- one h1, and headings that never skip a level (a screen reader's outline of the page);
- a skip link as the keyboard's first stop, leading to <main>;
- every form field with a name a screen reader reads (its <label>, aria-label or aria-labelledby),
  every link and button with a name (an icon's alt counts), every picture with an alt (empty for
  a decorative one), every aria-describedby / aria-labelledby naming an element that exists;
- boxes or radio buttons that answer one question (more than one sharing a name) grouped in a
  <fieldset> with a <legend> (or a named role=group), so that the question is read with each;
- a field marked aria-invalid described by an error that says something (aria-describedby);
- text against its background at 4.5:1 at least (3:1 for large text: 24 px, or 18.66 px bold),
  computed from the colours chromium resolved (a translucent background composed over those
  beneath it);
- at a phone's width, each control at least 24 × 24 px, or with no other control within 12 px
  of its centre (WCAG 2.5.8; a link inside a sentence, and a box inside its label, are exempt)."""
from __future__ import annotations

PROBLEMS = """() => {
  const problems = [];
  const visible = e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const desc = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().replace(/\\s+/g, '.') : '');
  const textOf = ids => ids.split(/\\s+/).map(i => document.getElementById(i)).filter(Boolean)
    .map(n => n.textContent).join(' ').trim();
  const nameOf = e => {
    if (e.getAttribute('aria-labelledby')) return textOf(e.getAttribute('aria-labelledby'));
    if ((e.getAttribute('aria-label') || '').trim()) return e.getAttribute('aria-label').trim();
    if (e.labels && e.labels.length) return [...e.labels].map(l => l.textContent).join(' ').trim();
    if (['A', 'BUTTON', 'SUMMARY'].includes(e.tagName)) {
      const clone = e.cloneNode(true);
      clone.querySelectorAll('img').forEach(i => i.replaceWith(i.alt || ''));
      return clone.textContent.trim() || (e.getAttribute('title') || '').trim();
    }
    return (e.getAttribute('title') || '').trim();
  };
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')];
  const h1s = headings.filter(h => h.tagName === 'H1').length;
  if (h1s !== 1) problems.push(`${h1s} h1 headings`);
  let last = 0;
  for (const h of headings) {
    const level = +h.tagName[1];
    if (level > (last || 1) + 1 || (!last && level !== 1))
      problems.push(`heading ${h.tagName} "${h.textContent.trim().slice(0, 40)}" after h${last}`);
    last = level;
  }
  const stops = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, '
                                              + 'video[controls], [tabindex]:not([tabindex="-1"])')];
  const main = document.querySelector('main');
  const first = stops[0];
  if (!main || !first || first.tagName !== 'A' || !(first.getAttribute('href') || '').startsWith('#')
      || document.getElementById(first.getAttribute('href').slice(1)) !== main)
    problems.push(`the first stop is not a skip link to <main>: ${first ? desc(first) : 'none'}`);
  for (const f of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
    if (!nameOf(f)) problems.push(`a field with no name: ${desc(f)} name=${f.name}`);
  for (const i of document.querySelectorAll('img'))
    if (!i.hasAttribute('alt')) problems.push(`a picture with no alt: ${desc(i)}`);
  for (const e of stops)
    if (['A', 'BUTTON', 'SUMMARY'].includes(e.tagName) && !nameOf(e)) problems.push(`a control with no name: ${desc(e)}`);
  for (const e of document.querySelectorAll('[aria-describedby], [aria-labelledby]'))
    for (const attr of ['aria-describedby', 'aria-labelledby'])
      for (const id of (e.getAttribute(attr) || '').split(/\\s+/).filter(Boolean))
        if (!document.getElementById(id)) problems.push(`${attr} names no element: #${id} on ${desc(e)}`);
  const groups = {};
  for (const c of document.querySelectorAll('input[type=checkbox][name], input[type=radio][name]'))
    (groups[(c.form ? c.form.id || [...document.forms].indexOf(c.form) : '') + ' ' + c.name] ||= []).push(c);
  for (const boxes of Object.values(groups)) {
    if (boxes.length < 2) continue;
    const group = boxes[0].closest('fieldset, [role=group], [role=radiogroup]');
    const named = group && (group.tagName === 'FIELDSET'
      ? (group.querySelector(':scope > legend')?.textContent || '').trim() : nameOf(group));
    if (!named || !boxes.every(b => group.contains(b)))
      problems.push(`choices not grouped under a question: ${boxes.length} × name=${boxes[0].name}`);
  }
  for (const f of document.querySelectorAll('[aria-invalid=true]'))
    if (!textOf(f.getAttribute('aria-describedby') || ''))
      problems.push(`an invalid field with no error tied to it: ${desc(f)}`);
  const ids = new Set();
  for (const e of document.querySelectorAll('[id]')) { if (ids.has(e.id)) problems.push(`id used twice: ${e.id}`); ids.add(e.id); }

  const rgba = c => { const m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const luminance = rgb => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]); };
  const backgroundOf = e => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.backgroundImage !== 'none') return null;  // text over a picture or a gradient: not measured here
      const c = rgba(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] === 1) break; }
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = out.map((v, i) => v * (1 - c[3]) + c[i] * c[3]);
    return out;
  };
  const said = new Set();
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t; (t = texts.nextNode());) {
    const e = t.parentElement;
    if (!t.textContent.trim() || !e || !visible(e) || e.closest('.visually-hidden, .skip-link, script, style, noscript, option')) continue;
    const s = getComputedStyle(e), fg = rgba(s.color), bg = backgroundOf(e);
    if (!fg || !bg) continue;
    const ink = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [a, b] = [luminance(ink), luminance(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize), large = size >= 24 || (+s.fontWeight >= 700 && size >= 18.66);
    const key = desc(e) + s.color;
    if (ratio < (large ? 3 : 4.5) && !said.has(key)) {
      said.add(key);
      problems.push(`contrast ${ratio.toFixed(2)}: ${desc(e)} "${t.textContent.trim().slice(0, 30)}" ${s.color} on rgb(${bg.map(Math.round)})`);
    }
  }

  if (innerWidth < 500) {
    const targets = stops.filter(e => visible(e) && !e.closest('.visually-hidden') && !e.matches('.skip-link'));
    const boxes = targets.map(e => e.getBoundingClientRect());
    targets.forEach((e, i) => {
      const r = boxes[i];
      if (r.width >= 24 && r.height >= 24) return;
      const label = e.closest('label');
      if (label && label.getBoundingClientRect().height >= 24) return;
      if (e.tagName === 'A' && getComputedStyle(e).display === 'inline'
          && e.parentElement.textContent.trim().length > e.textContent.trim().length + 5) return;
      const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
      const near = boxes.some((o, j) => j !== i && !targets[j].contains(e) && !e.contains(targets[j])
        && Math.hypot(Math.max(o.left - cx, 0, cx - o.right), Math.max(o.top - cy, 0, cy - o.bottom)) < 12);
      if (near) problems.push(`a small target: ${Math.round(r.width)}x${Math.round(r.height)} ${desc(e)} "${nameOf(e).slice(0, 30)}"`);
    });
  }
  return problems;
}"""


def problems(page) -> list[str]:
    """What this page, as rendered now, fails of the rules above (an empty list: none)."""
    page.wait_for_load_state("load")
    return page.evaluate(PROBLEMS)


def focus_ring(page) -> dict:
    """The focused element and how its focus shows: its outline (style, width) or box-shadow, its
    box, and whether it lies inside <main>."""
    return page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
        const r = e.getBoundingClientRect();
        return {tag: e.tagName, id: e.id, text: (e.textContent || e.value || '').trim().slice(0, 40),
                outline: s.outlineStyle, width: parseFloat(s.outlineWidth), shadow: s.boxShadow,
                box: [r.left, r.top, r.width, r.height], inMain: !!e.closest('main'), isMain: e.tagName === 'MAIN'}; }""")


def focused_after_load(page, expected: str, timeout_ms: int = 5000) -> str:
    """The id of the focused element once the focus has landed on `expected`, or whatever holds it
    when `timeout_ms` runs out (for the caller's assertion to name). Chromium runs a page's autofocus
    at its next rendering step, which a loaded machine can give well after the load event: read at
    once, the focus is still on <body>."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("id => document.activeElement && document.activeElement.id === id",
                               arg=expected, timeout=timeout_ms)
    except PlaywrightTimeout:
        pass
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")
