"""The page's one style sheet, inline: the report must open offline, years later, exactly as written.

Colour always comes with words beside it (the page says "MISMATCH", not only red), so the page
reads the same printed in black and white and through a screen reader.
"""

CSS = """
:root { --fail:#b42318; --fail-bg:#fde8e7; --pass:#067647; --pass-bg:#e3f6ec; --warn:#93370d;
  --warn-bg:#fef0c7; --mute:#475467; --mute-bg:#f2f4f7; --line:#d0d5dd; --partial:#175cd3;
  --partial-bg:#eff8ff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#101828;
  margin: 0 auto; max-width: 1200px; padding: 0 20px 40px; }
h1 { font-size: 22px; margin: 20px 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { background: var(--mute-bg); padding: 8px 10px; border-radius: 4px; white-space: pre-wrap;
  word-break: break-word; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: var(--mute-bg); font-weight: 600; }
.verdict { border-radius: 6px; padding: 14px 18px; margin-top: 18px; border: 2px solid; }
.verdict h1 { margin: 0 0 6px; font-size: 28px; letter-spacing: .02em; }
.v-fail { background: var(--fail-bg); border-color: var(--fail); color: var(--fail); }
.v-pass { background: var(--pass-bg); border-color: var(--pass); color: var(--pass); }
.v-incomplete { background: var(--warn-bg); border-color: var(--warn); color: var(--warn); }
.v-pass-partial { background: var(--partial-bg); border-color: var(--partial); color: var(--partial);
  border-style: dashed; }
.verdict .facts { color: #101828; display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 6px 0; }
.verdict ul { color: #101828; margin: 4px 0 0 18px; padding: 0; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent; }
.b-failed, .b-error { background: var(--fail-bg); color: var(--fail); border-color: var(--fail); }
.b-passed { background: var(--pass-bg); color: var(--pass); }
.b-skipped { background: var(--warn-bg); color: var(--warn); }
.b-not-run { background: #fff; color: var(--mute); border-color: var(--mute); border-style: dashed; }
.b-n-a { background: #fff; color: #98a2b3; }
.reason { display: block; color: var(--mute); font-size: 12px; margin-top: 2px; }
.dirty { color: var(--fail); font-weight: 600; }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 6px 12px;
  margin: 12px 0; }
tr.mismatch td { background: var(--fail-bg); font-weight: 600; }
tr.unobserved td { background: var(--warn-bg); }
tr.deferred td { background: var(--partial-bg); font-style: italic; }
.rationale { display: block; color: var(--mute); font-size: 12px; margin-top: 2px; }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--fail); border-radius: 4px;
  padding: 4px 12px 8px; margin: 10px 0; }
.meta { color: var(--mute); font-size: 12.5px; }
nav { margin: 10px 0; font-size: 13px; }
nav a { margin-right: 12px; }
footer { margin-top: 36px; color: var(--mute); font-size: 12px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { overflow-wrap: anywhere; }
table.controls td:first-child code { white-space: nowrap; }
table.controls td:nth-child(5), table.controls td:nth-child(6) { width: 21%; }
.matrix-group { border-left: 3px solid var(--line); padding-left: 12px; margin: 14px 0; }
figure.matrix { margin: 0 0 10px; }
/* The grid fits the page, on screen and on paper: fixed columns sharing the width, a cell's ports wrapping
   inside it, rather than a table wider than the page whose last destinations a printout cuts off. */
table.grid { table-layout: fixed; width: 100%; }
table.grid th, table.grid td { font-size: 11px; overflow-wrap: break-word; padding: 3px 4px; }
table.grid thead th { hyphens: auto; }
table.grid .flow { white-space: normal; padding: 1px 3px; }
.flow { display: block; padding: 1px 5px; border-radius: 3px; margin: 1px 0; white-space: nowrap;
  border: 1px solid transparent; }
.f-allowed { background: var(--pass-bg); color: var(--pass); }
.f-blocked { background: var(--mute-bg); color: var(--mute); }
.f-allowed-unexpected, .f-blocked-unexpected { background: var(--fail); color: #fff; font-weight: 700; }
.f-not-probed { background: var(--warn-bg); color: var(--warn); border: 1px dashed var(--warn); font-weight: 600; }
.f-static-decides { background: var(--partial-bg); color: var(--partial); font-style: italic; }
td.g-allowed-unexpected, td.g-blocked-unexpected { outline: 2px solid var(--fail); outline-offset: -2px; }
td.no-flow { color: #98a2b3; text-align: center; }
.flows-mismatch { color: var(--fail); font-weight: 600; }
.flows-not-probed { color: var(--warn); }
.flows-mismatch ul, .flows-not-probed ul, .flows-static-tier-decides ul { margin: 2px 0 8px 18px; padding: 0; }
.legend ul { list-style: none; padding: 0; margin: 4px 0 10px; display: flex; flex-wrap: wrap; gap: 4px 18px; }
.legend .flow { display: inline-block; }
tr.missed td { background: var(--fail-bg); color: var(--fail); font-weight: 600; }
.fault-problems { background: var(--fail-bg); border-left: 4px solid var(--fail); color: var(--fail);
  padding: 6px 12px; margin: 12px 0; }
.fault-problems ul { color: #101828; }
dl { margin: 4px 0; } dd { margin-left: 14px; }
.span-tree { margin: 4px 0 8px; }
.span-tree ul { list-style: none; margin: 0; padding-left: 20px; border-left: 1px dotted var(--line); }
.span-tree > ul { padding-left: 0; border-left: none; }
.span-tree li { margin: 2px 0; }
.svc { font-weight: 600; }
code.attr { color: var(--mute); }
.trace-head, .metrics { margin: 6px 0 2px; }
.metrics code { margin-right: 6px; }
details.telemetry { border: 1px solid var(--line); border-radius: 4px; padding: 4px 12px; margin: 6px 0; }
details summary { cursor: pointer; }
@media print { nav { display: none; } .failure, tr { break-inside: avoid; } body { max-width: none; } }
"""
