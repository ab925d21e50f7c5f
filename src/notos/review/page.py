"""The review page: one self-contained HTML document (no CDN, no build step, works offline).
Its script is in `page_script.py`; the server fills nothing in: the page reads the token from
its own URL and asks the JSON API for everything else."""

from __future__ import annotations

from notos.review.page_script import SCRIPT

STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1d2329; background: #f5f6f8; }
header { display: flex; gap: 1.2em; align-items: center; padding: 6px 12px; background: #23364d; color: #fff; }
header h1 { font-size: 15px; margin: 0; }
#summary span { margin-right: 1em; } #summary b { color: #ffd479; }
main { display: grid; grid-template-columns: 390px 1fr; height: calc(100vh - 34px); }
#left { border-right: 1px solid #ccd; display: flex; flex-direction: column; min-height: 0; background: #fff; }
#controls { padding: 6px; display: grid; grid-template-columns: 1fr 1fr; gap: 4px; border-bottom: 1px solid #dde; }
#controls label { font-size: 11px; color: #556; display: flex; flex-direction: column; }
#controls .wide { grid-column: span 2; }
select, input, textarea, button { font: inherit; }
#list { overflow: auto; flex: 1; }
#list table { width: 100%; border-collapse: collapse; }
#list td { padding: 3px 5px; border-bottom: 1px solid #eef; vertical-align: top; cursor: pointer; }
#list tr.current td { background: #dce9fb; }
#list .p { max-width: 220px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
#list .num { text-align: right; color: #345; font-variant-numeric: tabular-nums; }
.tag { font-size: 10px; padding: 0 4px; border-radius: 3px; background: #eee; margin-left: 2px; }
.tag.flag { background: #ffe0d6; color: #a3300a; } .tag.ed { background: #dff3e3; color: #176b2c; }
.tag.disc { background: #444; color: #fff; }
#pager { padding: 4px 6px; border-top: 1px solid #dde; display: flex; gap: 6px; align-items: center; }
#record { overflow: auto; padding: 10px 14px; min-width: 0; }
#prompt { white-space: pre-wrap; background: #fff; border: 1px solid #dde; padding: 8px; max-height: 140px; overflow: auto; }
#cards { display: grid; gap: 8px; margin-top: 8px; }
.card { background: #fff; border: 2px solid #dde; border-radius: 5px; padding: 6px; min-width: 0; }
.card.focus { border-color: #3b78c4; } .card.chosen { background: #f1fbf3; } .card.rejected { background: #fdf3f3; }
.card h3 { font-size: 13px; margin: 0 0 4px; display: flex; justify-content: space-between; }
.badge { font-size: 11px; padding: 1px 5px; border-radius: 3px; color: #fff; }
.badge-chosen { background: #23863f; } .badge-rejected { background: #b8322b; }
.principle { font-size: 11px; color: #667; margin-bottom: 3px; }
.response { white-space: pre-wrap; max-height: 170px; overflow: auto; border: 1px solid #eee; padding: 4px; font-size: 12px; }
.aspect { border-top: 1px solid #eee; padding: 3px 0; }
.aspect.focus { background: #eef4fd; }
.aspect .name { font-weight: 600; font-size: 11px; }
.rate { border: 1px solid #bbc; background: #fff; padding: 0 6px; cursor: pointer; border-radius: 3px; }
.rate.on { background: #23364d; color: #fff; } .rate.was { outline: 2px dashed #e3a008; }
.rationale { font-size: 11px; color: #444; max-height: 60px; overflow: auto; }
.critique { font-size: 11px; color: #333; border-top: 1px solid #eee; padding-top: 3px; max-height: 70px; overflow: auto; }
.flags { background: #fff6f2; border: 1px solid #f3c2b0; padding: 3px; margin-top: 4px; font-size: 11px; }
.verdict-confirmed { color: #a3300a; font-weight: 600; } .verdict-overruled { color: #176b2c; font-weight: 600; }
#actions { margin-top: 8px; display: flex; gap: 6px; align-items: flex-start; }
#note { flex: 1; height: 36px; }
#help { font-size: 11px; color: #667; margin-top: 6px; }
#notice { color: #ffd479; font-size: 12px; }
#error { color: #b8322b; } kbd { border: 1px solid #bbc; border-radius: 3px; padding: 0 3px; background: #fafafa; }
.discarded #cards { opacity: 0.45; }
"""

BODY = """
<header><h1>notos review</h1><div id="summary"></div><div id="notice"></div><div id="error"></div></header>
<main>
<section id="left">
  <div id="controls">
    <label>sort <select id="sort"></select></label>
    <label>order <select id="desc"><option value="1">high first</option><option value="0">low first</option></select></label>
    <label>source <select id="source"><option value="">all</option></select></label>
    <label>model <select id="model"><option value="">all</option></select></label>
    <label>aspect <select id="aspect"><option value="">any</option></select></label>
    <label>rating from / to <span><input id="low" type="number" min="1" max="5" step="1" style="width:45%">
      <input id="high" type="number" min="1" max="5" step="1" style="width:45%"></span></label>
    <label>audit flag <select id="flag"><option value="">all records</option><option value="any">any flag</option></select></label>
    <label>edited <select id="edited"><option value="">all</option><option value="yes">edited</option><option value="no">not edited</option></select></label>
    <label><span><input id="na" type="checkbox"> has N/A rating</span></label>
    <label class="wide">search prompts and responses <input id="q" type="search" placeholder="text ( / )"></label>
  </div>
  <div id="list"></div>
  <div id="pager"><button id="prev">&lt;</button><span id="pageinfo"></span><button id="next">&gt;</button></div>
</section>
<section id="record"><p>Pick a record on the left (<kbd>j</kbd>/<kbd>k</kbd>).</p></section>
</main>
"""


def page_html() -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>notos review</title>'
            f'<meta name="referrer" content="no-referrer"><style>{STYLE}</style></head>'
            f"<body>{BODY}<script>{SCRIPT}</script></body></html>")
