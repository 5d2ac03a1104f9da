// Schedules: the next scheduled runs on a timeline (the coming 7 days), and the runs schedules
// started, the missed ones that were caught up marked as such.
import { useEffect, useState } from 'preact/hooks';
import { api, subscribe, when } from '../api.js';
import { html } from '../html.js';

const DAY = 24 * 3600 * 1000;

export function Schedules() {
  const [next, setNext] = useState(null);
  const [runs, setRuns] = useState([]);
  const [error, setError] = useState(null);
  const load = () => {
    api('/status').then((s) => setNext(s.next || [])).catch((e) => setError(e.message));
    api('/runs?limit=200').then((d) => setRuns(d.runs.filter((r) => r.trigger === 'schedule'))).catch(() => {});
  };
  useEffect(() => {
    load();
    return subscribe((ev) => ev.type === 'run_finished' && load());
  }, []);
  const now = Date.now();
  const span = 7 * DAY;
  return html`
    <h1>Schedules</h1>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <section class="card" aria-label="Next runs">
      <h2>Next runs</h2>
      ${next === null ? html`<p aria-busy="true">Loading…</p>` : next.length === 0 ? html`<p class="muted">No schedules (the daemon lists them; a workflow needs a schedule trigger).</p>` : html`
        <div class="sched-track" role="img" aria-label="The next scheduled runs over the coming 7 days">
          ${[0, 1, 2, 3, 4, 5, 6, 7].map((d) => html`<span class="sched-tick" style=${`left:${(100 * d) / 7}%`}>${d === 0 ? 'now' : `+${d}d`}</span>`)}
          ${next.map((u) => {
            const t = Date.parse(u.at);
            const left = Math.min(100, Math.max(0, (100 * (t - now)) / span));
            return html`<span class="sched-dot" style=${`left:${left}%`} title=${`${u.name} at ${when(t)}`}></span>`;
          })}
        </div>
        <ul class="plain">${next.map((u) => html`<li><a href=${`#/workflows/${encodeURIComponent(u.workflow_id)}`}>${u.name}</a> at ${when(Date.parse(u.at))}</li>`)}</ul>`}
    </section>
    <section class="card" aria-label="Scheduled runs">
      <h2>Runs started by schedules</h2>
      ${runs.length === 0 ? html`<p class="muted">None yet.</p>` : html`
        <table class="list">
          <thead><tr><th scope="col">Due</th><th scope="col">Workflow</th><th scope="col">Fired</th><th scope="col">Status</th></tr></thead>
          <tbody>${runs.map((r) => {
            const d = r.trigger_data || {};
            return html`<tr>
              <td>${d.scheduled_for ? when(Date.parse(d.scheduled_for)) : ''}</td><td>${r.workflow_id}</td>
              <td>${d.catch_up ? html`<strong>missed, caught up</strong> ${when(d.fired_at_ms)}` : when(d.fired_at_ms)}</td>
              <td><a href=${`#/runs/${encodeURIComponent(r.id)}`}><span class=${`badge ${r.status}`}>${r.status}</span></a></td></tr>`;
          })}</tbody>
        </table>`}
    </section>`;
}
