// Runs: the history with filters, and one run live (server-sent events): its graph with each
// action's status, the action records (attempts, redacted outputs, errors), a timeline of
// durations, and pause / resume / cancel. A failed run opens at its failed action.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, duration, latest, subscribe, when } from '../api.js';
import { html } from '../html.js';
import { Graph } from '../graph.js';

const STATUSES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled', 'interrupted'];
const LIVE = ['queued', 'running', 'paused'];

export function Runs() {
  const [runs, setRuns] = useState(null);
  const [workflows, setWorkflows] = useState([]);
  const [wf, setWf] = useState('');
  const [status, setStatus] = useState('');
  const [error, setError] = useState(null);
  const filters = useRef({ wf, status });
  filters.current = { wf, status };
  const fetchRuns = useMemo(() => latest((q) => api(`/runs?limit=100${q}`), (d) => setRuns(d.runs)), []);
  const load = () => {
    const q = filters.current.wf ? `&workflow=${encodeURIComponent(filters.current.wf)}` : '';
    fetchRuns(q).catch((e) => setError(e.message));
  };
  useEffect(() => {
    api('/workflows').then((d) => setWorkflows(d.workflows)).catch(() => {});
    return subscribe((ev) => ev.type && ev.type.startsWith('run_') && load());
  }, []);
  useEffect(load, [wf]);
  const shown = (runs || []).filter((r) => !status || r.status === status);
  return html`
    <h1>Runs</h1>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <form class="filters" aria-label="Filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Workflow <select value=${wf} onChange=${(e) => setWf(e.target.value)}>
        <option value="">All</option>${workflows.map((w) => html`<option value=${w.id}>${w.name}</option>`)}</select></label>
      <label>Status <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">All</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
    </form>
    ${!runs ? html`<p aria-busy="true">Loading…</p>` : html`
      <table class="list" aria-label="Run history">
        <thead><tr><th scope="col">Started</th><th scope="col">Workflow</th><th scope="col">Trigger</th><th scope="col">Status</th><th scope="col">Error</th></tr></thead>
        <tbody>${shown.map((r) => html`
          <tr data-run=${r.id}>
            <td><a href=${`#/runs/${encodeURIComponent(r.id)}`}>${when(r.started_at || r.created_at)}</a></td>
            <td>${r.workflow_id}</td><td>${r.trigger}${r.trigger_data && r.trigger_data.catch_up ? ' (caught up)' : ''}</td>
            <td><span class=${`badge ${r.status}`}>${r.status}</span></td><td class="small">${r.error || ''}</td>
          </tr>`)}</tbody>
      </table>
      ${shown.length === 0 && html`<p class="muted">No runs match.</p>`}`}`;
}

/** Each action's latest status in a run, from its records and the live events since. */
function statuses(actions, live) {
  const s = {};
  for (const a of actions) s[a.action_id] = a.status;
  return { ...s, ...live };
}

function Timeline({ run, actions }) {
  const start = run.started_at || run.created_at;
  const end = Math.max(run.finished_at || Date.now(), ...actions.map((a) => a.finished_at || a.started_at));
  const span = Math.max(end - start, 1);
  return html`
    <section class="card" aria-label="Timeline">
      <h2>Timeline</h2>
      <ol class="timeline">${actions.map((a) => {
        const left = (100 * (a.started_at - start)) / span;
        const width = Math.max((100 * ((a.finished_at || Date.now()) - a.started_at)) / span, 0.8);
        return html`<li>
          <span class="tl-label">${a.action_id}</span>
          <span class="tl-track"><span class=${`tl-bar ${a.status}`} style=${`left:${left}%;width:${width}%`}
            title=${`${a.action_id}: ${duration(a.duration_us)}`}></span></span>
          <span class="tl-dur">${a.duration_us != null ? duration(a.duration_us) : a.status}</span></li>`;
      })}</ol>
    </section>`;
}

export function RunPage({ id, focus }) {
  const [data, setData] = useState(null);
  const [graph, setGraph] = useState(null);
  const [live, setLive] = useState({});
  const [selected, setSelected] = useState(focus || null);
  const [error, setError] = useState(null);
  // Until the user picks an action, a failed run shows its failed action.
  const picked = useRef(!!focus);
  const pick = (a) => {
    picked.current = true;
    setSelected(a);
  };
  const fetchRun = useMemo(
    () =>
      latest(
        () => api(`/runs/${encodeURIComponent(id)}`),
        (d) => {
          setData(d);
          if (!picked.current && d.run.status === 'failed') {
            const failed = d.actions.find((a) => a.status === 'failed');
            if (failed) setSelected(failed.action_id);
          }
        },
      ),
    [id],
  );
  const load = () => fetchRun().catch((e) => setError(e.message));
  useEffect(() => {
    load();
    let timer = null;
    return subscribe((ev) => {
      if (ev.run_id !== id) return;
      if (ev.type === 'action_started') setLive((l) => ({ ...l, [ev.action_id]: 'running' }));
      if (ev.type === 'action_finished') setLive((l) => ({ ...l, [ev.action_id]: 'succeeded' }));
      if (ev.type === 'action_failed') setLive((l) => ({ ...l, [ev.action_id]: 'failed' }));
      clearTimeout(timer);
      timer = setTimeout(load, 80);
    });
  }, [id]);
  useEffect(() => {
    if (data && !graph) api(`/workflows/${encodeURIComponent(data.run.workflow_id)}`).then((w) => setGraph(w.graph)).catch(() => {});
  }, [data]);
  useEffect(() => {
    if (!selected) return;
    const row = document.querySelector(`[data-record="${CSS.escape(selected)}"]`);
    if (row) {
      row.scrollIntoView({ block: 'nearest' });
      row.focus({ preventScroll: true });
    }
  }, [selected, data && data.actions.length]);
  // A run that ended may still have live statuses from events; the records win then.
  useEffect(() => {
    if (data && !LIVE.includes(data.run.status)) setLive({});
  }, [data && data.run.status]);
  if (error) return html`<p role="alert" class="error">${error}</p>`;
  if (!data) return html`<p aria-busy="true">Loading…</p>`;
  const { run, actions } = data;
  const control = async (what) => {
    try {
      await api(`/runs/${encodeURIComponent(id)}/${what}`, { method: 'POST' });
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  const st = statuses(actions, live);
  const running = actions.filter((a) => a.status === 'running').map((a) => a.action_id);
  return html`
    <h1>Run of <a href=${`#/workflows/${encodeURIComponent(run.workflow_id)}`}>${run.workflow_id}</a></h1>
    <p><span class=${`badge ${run.status}`} data-testid="run-status" aria-live="polite">${run.status}</span>
      <code class="small">${run.id}</code> · ${run.trigger} · ${when(run.started_at || run.created_at)}
      ${running.length > 0 && html` · running <strong>${running.join(', ')}</strong>`}</p>
    ${run.error && html`<p class="error" role="alert">${run.error}</p>`}
    <div class="toolbar" role="group" aria-label="Run controls">
      <button type="button" onClick=${() => control('pause')} disabled=${run.status !== 'running' && run.status !== 'queued'}>Pause</button>
      <button type="button" onClick=${() => control('resume')} disabled=${run.status !== 'paused'}>Resume</button>
      <button type="button" onClick=${() => control('cancel')} disabled=${!LIVE.includes(run.status)}>Cancel</button>
    </div>
    <div class="two">
      <section aria-label="Graph">${graph && html`<${Graph} graph=${graph} status=${st} selected=${selected} onSelect=${pick} label="Run graph" />`}</section>
      <section>
        <table class="list" aria-label="Actions of this run">
          <thead><tr><th scope="col">Action</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Duration</th></tr></thead>
          <tbody>${actions.map((a) => html`
            <tr tabindex="-1" data-record=${a.action_id} class=${selected === a.action_id ? 'selected' : ''} onClick=${() => pick(a.action_id)}>
              <td>${a.path || a.action_id}</td><td>${a.kind}</td><td><span class=${`badge ${a.status}`}>${a.status}</span></td>
              <td>${a.attempts}</td><td>${duration(a.duration_us)}</td></tr>
            ${selected === a.action_id && html`<tr class="detail"><td colspan="5">
              ${a.error && html`<p class="error" data-testid="action-error">${a.error}</p>`}
              <pre aria-label=${`Output of ${a.action_id}`}>${a.output == null ? '(no output)' : JSON.stringify(a.output, null, 2)}</pre>
              ${a.output_truncated && html`<p class="muted">Output truncated.</p>`}</td></tr>`}`)}</tbody>
        </table>
        <${Timeline} run=${run} actions=${actions} />
      </section>
    </div>`;
}
