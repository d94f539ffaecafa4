// Renders cases with the real mustache.js 4.2.0 for src/template_diff.rs.
// stdin: JSON array of {tpl, view}; in views, {"$date": "<ISO>"} is a Date and
// {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"} a number JSON cannot hold.
// stdout: JSON array of {ok: true, out} or {ok: false, err: String(e)}, one per case.
'use strict';
process.env.TZ = 'UTC';
const Mustache = require('mustache');

function revive(key, v) {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '$date') return new Date(v.$date);
    if (keys.length === 1 && keys[0] === '$num') return Number(v.$num);
  }
  return v;
}

const input = require('fs').readFileSync(0, 'utf8');
const results = JSON.parse(input, revive).map(({ tpl, view }) => {
  try {
    return { ok: true, out: Mustache.render(tpl, view) };
  } catch (e) {
    return { ok: false, err: String(e) };
  }
});
process.stdout.write(JSON.stringify(results));
