/** The page's styles: system fonts, light and dark from the system's preference, no assets. */
export const styles = `
:root {
  --bg: #ffffff; --fg: #1b1f24; --muted: #5b6570; --line: #d7dce1; --panel: #f5f7f9;
  --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --accent: #0b5cad; --bar: #e3e7eb;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1317; --fg: #e6e9ec; --muted: #9aa4ae; --line: #2a3139; --panel: #161b21;
    --ok: #3fb950; --bad: #f47067; --warn: #d4a72c; --accent: #6cb6ff; --bar: #262d35;
  }
}
* { box-sizing: border-box; }
html { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, tr:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; }
header { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header form { margin-left: auto; }
.brand { font-weight: 700; font-size: 1.15rem; text-decoration: none; color: var(--fg); }
.muted { color: var(--muted); }
.live::before { content: "●"; margin-right: 6px; color: var(--warn); }
.live.on::before { color: var(--ok); }
main { padding: 16px 20px 40px; max-width: 1400px; }
main:focus { outline: none; }
h1 { font-size: 1.3rem; margin: 8px 0 12px; }
h2 { font-size: 1.05rem; margin: 24px 0 8px; }
section { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; min-width: 480px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 0.85rem; }
tr.clickable { cursor: pointer; }
tr.clickable:hover { background: var(--panel); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.82rem; border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.health-bar { display: flex; align-items: center; gap: 8px; }
progress { width: 110px; height: 10px; appearance: none; border: 0; border-radius: 5px; background: var(--bar); }
progress::-webkit-progress-bar { background: var(--bar); border-radius: 5px; }
progress::-webkit-progress-value { background: var(--ok); border-radius: 5px; }
progress::-moz-progress-bar { background: var(--ok); border-radius: 5px; }
progress.partial::-webkit-progress-value { background: var(--warn); }
progress.partial::-moz-progress-bar { background: var(--warn); }
progress.none::-webkit-progress-value { background: var(--bad); }
progress.none::-moz-progress-bar { background: var(--bad); }
svg.spark { width: 120px; height: 28px; display: block; }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.spark line { stroke: var(--line); stroke-width: 1; }
.rate { display: flex; align-items: center; gap: 8px; font-variant-numeric: tabular-nums; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: var(--panel); min-width: 140px; }
.card .n { font-size: 1.4rem; font-weight: 600; }
.login { max-width: 420px; margin: 10vh auto; }
.login form { display: grid; gap: 8px; }
input, button { font: inherit; padding: 6px 10px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
button { cursor: pointer; background: var(--panel); }
.error { color: var(--bad); }
.events li { margin: 2px 0; }
@media (max-width: 640px) {
  html { font-size: 14px; }
  header, main { padding-left: 10px; padding-right: 10px; }
  .wide { display: none; }
}
`;
