// Workflows: the list (triggers, last run, success rate, enabled switch) and one workflow (its
// graph, a form to run it with variables, its recent runs).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, latest, subscribe, when } from '../api.js';
import { html } from '../html.js';
import { Graph } from '../graph.js';

/** One trigger, in a few words. */
export function triggerText(t) {
  const kind = t.type || Object.keys(t)[0] || 'trigger';
  const detail = t.cron || t.path || (t.phrases && t.phrases.join(' | ')) || t.event || t.query || '';
  return detail ? `${kind}: ${detail}` : kind;
}

function rate(stats) {
  if (!stats || !stats.runs) return '–';
  return `${Math.round((100 * stats.successes) / stats.runs)}% of ${stats.runs}`;
}

export function Workflows() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const fetchList = useMemo(() => latest(() => api('/workflows'), (d) => setList(d.workflows)), []);
  const load = () => fetchList().catch((e) => setError(e.message));
  useEffect(() => {
    load();
    return subscribe((ev) => ev.type === 'run_finished' && load());
  }, []);
  const toggle = async (w) => {
    try {
      await api(`/workflows/${encodeURIComponent(w.id)}/${w.enabled ? 'disable' : 'enable'}`, { method: 'POST' });
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  return html`
    <h1>Workflows</h1>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <p><a class="button" href="#/builder">New workflow</a></p>
    ${!list ? html`<p aria-busy="true">Loading…</p>` : html`
      <table class="list" aria-label="Workflows">
        <thead><tr><th scope="col">Workflow</th><th scope="col">Triggers</th><th scope="col">Last run</th>
          <th scope="col">Success rate</th><th scope="col">Enabled</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          ${list.map((w) => html`
            <tr data-workflow=${w.id}>
              <td><a href=${`#/workflows/${encodeURIComponent(w.id)}`}>${w.name}</a><div class="muted small">${w.id}</div></td>
              <td>${(w.triggers || []).map((t) => html`<span class="chip">${triggerText(t)}</span>`)}</td>
              <td>${when(w.stats && w.stats.last_run_at)}</td>
              <td>${rate(w.stats)}</td>
              <td><button class="switch" role="switch" aria-checked=${w.enabled ? 'true' : 'false'}
                   aria-label=${`${w.name} enabled`} onClick=${() => toggle(w)}>
                   <span aria-hidden="true">${w.enabled ? 'On' : 'Off'}</span></button></td>
              <td><a href=${`#/workflows/${encodeURIComponent(w.id)}`}>Open</a> · <a href=${`#/builder/${encodeURIComponent(w.id)}`}>Edit</a></td>
            </tr>`)}
        </tbody>
      </table>`}`;
}

function RunForm({ w }) {
  const vars = (w.definition && w.definition.variables) || {};
  const [values, setValues] = useState(() =>
    Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
  );
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    setError(null);
    const parsed = {};
    for (const [k, text] of Object.entries(values)) {
      const orig = vars[k];
      if (typeof orig === 'string') parsed[k] = text;
      else {
        try {
          parsed[k] = JSON.parse(text);
        } catch {
          setError(`variable ${k}: expected JSON like ${JSON.stringify(orig)}`);
          return;
        }
      }
    }
    try {
      const r = await api(`/workflows/${encodeURIComponent(w.id)}/run`, {
        method: 'POST',
        body: { vars: parsed, source: 'dashboard' },
      });
      location.hash = `#/runs/${encodeURIComponent(r.run_id)}`;
    } catch (err) {
      setError(err.message);
    }
  };
  return html`
    <form class="card" onSubmit=${run} aria-label="Run with variables">
      <h2>Run</h2>
      ${Object.keys(vars).length === 0 && html`<p class="muted">No variables.</p>`}
      ${Object.keys(values).map((k) => html`
        <label class="field">${k}
          <input name=${k} value=${values[k]} onInput=${(e) => setValues({ ...values, [k]: e.target.value })} />
        </label>`)}
      ${error && html`<p role="alert" class="error">${error}</p>`}
      <button type="submit" disabled=${!w.enabled}>Run ${w.name}</button>
      ${!w.enabled && html`<p class="muted">Disabled: enable it to run.</p>`}
    </form>`;
}

export function WorkflowPage({ id }) {
  const [w, setW] = useState(null);
  const [runs, setRuns] = useState([]);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(null);
  useEffect(() => {
    api(`/workflows/${encodeURIComponent(id)}`).then(setW).catch((e) => setError(e.message));
    const loadRuns = () => api(`/runs?workflow=${encodeURIComponent(id)}&limit=10`).then((d) => setRuns(d.runs)).catch(() => {});
    loadRuns();
    return subscribe((ev) => ev.workflow_id === id && loadRuns());
  }, [id]);
  if (error) return html`<p role="alert" class="error">${error}</p>`;
  if (!w) return html`<p aria-busy="true">Loading…</p>`;
  const node = selected && w.definition && findAction(w.definition.actions || [], selected);
  return html`
    <h1>${w.name}</h1>
    <p class="muted">${w.description} <code>${w.id}</code> · <a href=${`#/builder/${encodeURIComponent(w.id)}`}>Edit in the builder</a></p>
    <div class="two">
      <section aria-label="Graph"><${Graph} graph=${w.graph} selected=${selected} onSelect=${setSelected} label=${`Actions of ${w.name}`} />
        ${node && html`<div class="card" aria-live="polite"><h2>${node.id}</h2><pre>${JSON.stringify(node, null, 2)}</pre></div>`}
      </section>
      <div>
        <${RunForm} w=${w} />
        <section class="card"><h2>Recent runs</h2>
          <ul class="plain">${runs.map((r) => html`<li><a href=${`#/runs/${encodeURIComponent(r.id)}`}>${when(r.created_at)}</a> <span class=${`badge ${r.status}`}>${r.status}</span></li>`)}</ul>
        </section>
      </div>
    </div>`;
}

/** The action called `id` in `actions`, loop bodies included. */
export function findAction(actions, id) {
  for (const a of actions) {
    if (a.id === id) return a;
    const body = a.config && a.config.actions;
    if (Array.isArray(body)) {
      const inner = findAction(body, id);
      if (inner) return inner;
    }
  }
  return null;
}
