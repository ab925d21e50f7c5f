"""The review page's script (plain ES2017, no library): list, record view, edits, keyboard.

Keys, as in annotation tools: j / k next / previous record, left / right (h / l) the completion,
up / down the aspect, 1-5 rate it (0: N/A), c chosen, r rejected, d discard, a accept the
machine's flag, o overrule it, n note, enter mark reviewed and go to the next record, / search."""

SCRIPT = r"""
const TOKEN = new URLSearchParams(location.search).get('token') || '';
const $ = (id) => document.getElementById(id);
const state = { version: 0, page: 0, size: 50, total: 0, ids: [], rows: [], current: null, record: null, focus: 0, aspect: 0, meta: null };

function esc(text) {
  return String(text == null ? '' : text).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}
function fmt(x) { return x == null ? '–' : (Math.round(x * 100) / 100).toString(); }

async function api(path, body) {
  const options = { headers: { 'X-Notos-Token': TOKEN } };
  if (body !== undefined) {
    options.method = 'POST';
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const value = await response.json();
  if (!response.ok) { $('error').textContent = value.error || response.statusText; throw new Error(value.error); }
  $('error').textContent = '';
  return value;
}

function filters() {
  const q = new URLSearchParams();
  q.set('sort', $('sort').value); q.set('desc', $('desc').value);
  for (const name of ['source', 'model', 'aspect', 'low', 'high', 'flag', 'edited', 'q']) {
    if ($(name).value) q.set(name, $(name).value);
  }
  if ($('na').checked) q.set('na', '1');
  q.set('page', state.page); q.set('size', state.size);
  return q;
}

async function loadList(keepPage) {
  if (!keepPage) state.page = 0;
  const data = await api('/api/records?' + filters().toString());
  state.total = data.total; state.ids = data.ids; state.rows = data.rows;
  renderList();
  showPending(data);
}

// A first start serves the list before the audit (and the texts) are in: say so, and reload
// the list when they are, so severity and flag counts fill in.
let polling = false;
function showPending(p) {
  const what = [p.texts_pending ? 'reading the texts: a record opens when they are in' : '',
    p.audit_pending ? 'audit flags are still being computed: severity, flag counts and flag filters come when it finishes' : '',
    p.load_error ? 'reading the data failed: ' + p.load_error : ''];
  $('notice').textContent = what.filter(Boolean).join(' · ');
  document.body.dataset.audit = p.audit_pending ? 'pending' : 'done';
  if ((p.audit_pending || p.texts_pending) && !polling) { polling = true; setTimeout(pollPending, 1000); }
}
async function pollPending() {
  let meta = null;
  try { meta = await api('/api/meta'); } catch (err) { meta = null; }
  polling = false;
  if (!meta) { polling = true; setTimeout(pollPending, 2000); return; }  // a busy server or a blip: ask again
  if (meta.audit_pending || meta.texts_pending) showPending(meta); else await loadList(true);
}

function renderList() {
  const rows = state.rows.map((r) => {
    const tags = (r.flagged ? `<span class="tag flag">${r.flagged} flag${r.flagged > 1 ? 's' : ''}</span>` : '') +
      (r.edited ? '<span class="tag ed">edited</span>' : '') + (r.discarded ? '<span class="tag disc">discarded</span>' : '');
    return `<tr class="rec${r.prompt_id === state.current ? ' current' : ''}" data-id="${esc(r.prompt_id)}">` +
      `<td class="p" title="${esc(r.prompt)}">${esc(r.prompt)}<br><small>${esc(r.source || '')}</small>${tags}</td>` +
      `<td class="num" title="chosen score">${fmt(r.chosen_score)}</td><td class="num" title="best critique score">${fmt(r.critique)}</td>` +
      `<td class="num" title="audit severity">${fmt(r.severity)}</td></tr>`;
  }).join('');
  $('list').innerHTML = '<table><tr><th>record</th><th title="chosen score">chosen</th><th title="critique">crit.</th><th title="severity">sev.</th></tr>' +
    rows + '</table>';
  const pages = Math.max(1, Math.ceil(state.total / state.size));
  $('pageinfo').textContent = `page ${state.page + 1} / ${pages} · ${state.total} records`;
  for (const tr of document.querySelectorAll('tr.rec')) tr.onclick = () => openRecord(tr.dataset.id);
  document.body.dataset.list = String(++state.version);  // tests wait on this after a sort or filter
}

async function openRecord(id) {
  state.current = id;
  state.record = await api('/api/record?id=' + encodeURIComponent(id));
  state.focus = Math.min(state.focus, state.record.completions.length - 1);
  renderRecord();
  document.body.dataset.record = id;
  for (const tr of document.querySelectorAll('tr.rec')) tr.classList.toggle('current', tr.dataset.id === id);
}

function renderRecord() {
  const r = state.record;
  const cards = r.completions.map((c, i) => {
    const mark = c.index === r.chosen ? '<span class="badge badge-chosen">chosen</span>' :
      c.index === r.rejected ? '<span class="badge badge-rejected">rejected</span>' : '';
    const aspects = c.ratings.map((a, j) => {
      const buttons = [1, 2, 3, 4, 5].map((v) => `<button class="rate${a.rating === v ? ' on' : ''}${a.edited && a.original === v ? ' was' : ''}" ` +
        `data-card="${i}" data-aspect="${j}" data-value="${v}">${v}</button>`).join('') +
        `<button class="rate${a.na ? ' on' : ''}" data-card="${i}" data-aspect="${j}" data-value="na">N/A</button>`;
      return `<div class="aspect${i === state.focus && j === state.aspect ? ' focus' : ''}" data-aspect-name="${esc(a.aspect)}">` +
        `<div class="name">${esc(a.aspect)}${a.edited ? ` <span class="tag ed">was ${fmt(a.original)}</span>` : ''}</div>${buttons}` +
        `<div class="rationale">${esc(a.rationale)}</div></div>`;
    }).join('');
    const flags = c.flags.length ? `<div class="flags">${c.flags.map((f) => `<div><b>${esc(f.flag)}</b>: ${esc(f.reason)}</div>`).join('')}` +
      `${c.verdict ? `<div class="verdict-${c.verdict}">flag ${c.verdict}</div>` : ''}` +
      `<button data-verdict="confirmed" data-card="${i}">accept flag (a)</button> <button data-verdict="overruled" data-card="${i}">overrule (o)</button></div>` : '';
    const cls = (i === state.focus ? ' focus' : '') + (c.index === r.chosen ? ' chosen' : c.index === r.rejected ? ' rejected' : '');
    const principle = c.principle ? `<div class="principle">principle: ${esc(c.principle)}</div>` : '';
    return `<div class="card${cls}" data-index="${c.index}"><h3><span>#${c.index} ${esc(c.model || '')}</span>${mark}</h3>${principle}` +
      `<div class="response">${esc(c.response)}</div>${aspects}` +
      `<div class="critique"><b>critique ${fmt(c.overall_score)}</b> ${esc(c.critique)}</div>${flags}` +
      `<div><button data-mark="chosen" data-card="${i}">chosen (c)</button> <button data-mark="rejected" data-card="${i}">rejected (r)</button></div></div>`;
  }).join('');
  const machine = r.machine.chosen == null ? 'no pair' : `machine: #${r.machine.chosen} over #${r.machine.rejected}`;
  $('record').className = r.discarded ? 'discarded' : '';
  $('record').innerHTML = `<div><b>${esc(r.prompt_id)}</b> · ${esc(r.source || '')} · ${esc(r.strategy)} binarization · ${machine}` +
    `${r.discarded ? ' · <span class="tag disc">discarded</span>' : ''}${r.reviewed ? ' · <span class="tag ed">reviewed</span>' : ''}</div>` +
    `<div id="prompt">${esc(r.prompt)}</div><div id="cards" style="grid-template-columns: repeat(${r.completions.length}, minmax(0, 1fr))">${cards}</div>` +
    `<div id="actions"><textarea id="note" placeholder="note (n)">${esc(r.note)}</textarea><button id="save-note">save note</button>` +
    `<button id="discard">${r.discarded ? 'restore (d)' : 'discard (d)'}</button><button id="done">reviewed, next (enter)</button></div>` +
    `<div id="help">keys: <kbd>j</kbd>/<kbd>k</kbd> record · <kbd>←</kbd>/<kbd>→</kbd> completion · <kbd>↑</kbd>/<kbd>↓</kbd> aspect · ` +
    `<kbd>1</kbd>-<kbd>5</kbd> rate (<kbd>0</kbd> N/A) · <kbd>c</kbd> chosen · <kbd>r</kbd> rejected · <kbd>d</kbd> discard · ` +
    `<kbd>a</kbd>/<kbd>o</kbd> accept / overrule flag · <kbd>n</kbd> note · <kbd>enter</kbd> reviewed, next · <kbd>/</kbd> search</div>`;
  for (const b of document.querySelectorAll('button.rate')) {
    b.onclick = () => { state.focus = +b.dataset.card; state.aspect = +b.dataset.aspect; rate(b.dataset.value === 'na' ? null : +b.dataset.value); };
  }
  for (const b of document.querySelectorAll('button[data-mark]')) b.onclick = () => { state.focus = +b.dataset.card; mark(b.dataset.mark); };
  for (const b of document.querySelectorAll('button[data-verdict]')) b.onclick = () => { state.focus = +b.dataset.card; verdict(b.dataset.verdict); };
  for (const card of document.querySelectorAll('.card')) {
    card.addEventListener('click', (e) => {
      const i = [...document.querySelectorAll('.card')].indexOf(card);
      const aspect = e.target.closest('.aspect');
      if (aspect) state.aspect = [...card.querySelectorAll('.aspect')].indexOf(aspect);
      if (i !== state.focus || aspect) { state.focus = i; highlight(); }
    });
  }
  $('save-note').onclick = () => send({ field: 'note', new: $('note').value || null });
  $('discard').onclick = () => send({ field: 'discard', new: !state.record.discarded });
  $('done').onclick = () => reviewedNext();
}

function highlight() {
  document.querySelectorAll('.card').forEach((card, i) => {
    card.classList.toggle('focus', i === state.focus);
    card.querySelectorAll('.aspect').forEach((a, j) => a.classList.toggle('focus', i === state.focus && j === state.aspect));
  });
}

async function send(edit) {
  const done = await api('/api/edit', Object.assign({ prompt_id: state.record.prompt_id, completion_index: null }, edit));
  state.record = done.record;
  renderRecord();
  renderSummary(done.summary);
  document.body.dataset.edits = String(done.summary.edits);
  await loadList(true);  // the list's keys of this record (chosen score, edited) changed on the server
}

function focused() { return state.record && state.record.completions[state.focus]; }
function rate(value) {
  const c = focused(); if (!c) return;
  const aspect = c.ratings[state.aspect];
  return send({ field: 'rating_' + aspect.aspect, completion_index: c.index, new: value });
}
function mark(which) { const c = focused(); if (c) return send({ field: which, completion_index: c.index, new: c.index }); }
function verdict(value) { const c = focused(); if (c && c.flags.length) return send({ field: 'flag', completion_index: c.index, new: value }); }

async function reviewedNext() {
  await send({ field: 'reviewed', new: true });
  step(1);
}

async function step(delta) {
  if (!state.ids.length) return;
  let i = state.ids.indexOf(state.current) + delta;
  if (state.current == null || i < 0) i = delta > 0 ? 0 : -1;
  if (i < 0 || i >= state.ids.length) return;
  const page = Math.floor(i / state.size);
  if (page !== state.page) { state.page = page; await loadList(true); }
  await openRecord(state.ids[i]);
  const tr = document.querySelector('tr.rec.current'); if (tr) tr.scrollIntoView({ block: 'nearest' });
}

function renderSummary(s) {
  $('summary').innerHTML = `<span>reviewed <b>${s.reviewed}</b> / ${s.records}</span><span>edited <b>${s.edited}</b></span>` +
    `<span>discarded <b>${s.discarded}</b></span><span>flags confirmed <b>${s.flags_confirmed}</b> · overruled <b>${s.flags_overruled}</b>` +
    `${s.flag_precision == null ? '' : ` (audit precision ${Math.round(s.flag_precision * 100)}%)`}</span>`;
}

document.addEventListener('keydown', (e) => {
  const typing = ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
  if (typing) { if (e.key === 'Escape') document.activeElement.blur(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const r = state.record;
  const keys = {
    j: () => step(1), k: () => step(-1), '/': () => $('q').focus(), n: () => r && $('note').focus(),
    ArrowRight: () => { if (r) { state.focus = Math.min(state.focus + 1, r.completions.length - 1); highlight(); } },
    ArrowLeft: () => { if (r) { state.focus = Math.max(state.focus - 1, 0); highlight(); } },
    ArrowDown: () => { if (r) { state.aspect = Math.min(state.aspect + 1, r.aspects.length - 1); highlight(); } },
    ArrowUp: () => { if (r) { state.aspect = Math.max(state.aspect - 1, 0); highlight(); } },
    c: () => mark('chosen'), r: () => mark('rejected'), d: () => r && send({ field: 'discard', new: !r.discarded }),
    a: () => verdict('confirmed'), o: () => verdict('overruled'), Enter: () => r && reviewedNext(),
    '0': () => rate(null),
  };
  keys.l = keys.ArrowRight; keys.h = keys.ArrowLeft;
  for (const v of [1, 2, 3, 4, 5]) keys[String(v)] = () => rate(v);
  const act = keys[e.key];
  if (act) { e.preventDefault(); act(); }
});

async function init() {
  const meta = state.meta = await api('/api/meta');
  const options = (values, labels) => values.map((v, i) => `<option value="${esc(v)}">${esc(labels ? labels[i] : v)}</option>`).join('');
  $('sort').innerHTML = options(meta.sorts, meta.sorts.map((s) => ({position: 'data order', chosen: 'chosen rating',
    critique: 'critique score', severity: 'audit severity', disagreement: 'rating vs rationale', length: 'length'}[s] || s)));
  $('desc').value = '0';
  $('source').innerHTML += options(meta.sources); $('model').innerHTML += options(meta.models);
  $('aspect').innerHTML += options(meta.aspects); $('flag').innerHTML += options(meta.flags);
  for (const id of ['sort', 'desc', 'source', 'model', 'aspect', 'low', 'high', 'flag', 'edited', 'na']) $(id).onchange = () => loadList();
  let timer = null;
  $('q').oninput = () => { clearTimeout(timer); timer = setTimeout(() => loadList(), 250); };
  $('prev').onclick = () => { if (state.page > 0) { state.page--; loadList(true); } };
  $('next').onclick = () => { if ((state.page + 1) * state.size < state.total) { state.page++; loadList(true); } };
  renderSummary(await api('/api/summary'));
  await loadList();
  document.body.dataset.ready = '1';
}
init();
"""
