// The builder: the YAML beside its live graph. Every edit is validated by the daemon (errors at
// line and column in the editor and listed below it); the graph follows the last text that
// validated. "Add action" offers the registry's kinds with their fields; Save writes the file
// atomically through `PUT /v1/workflows/{id}` (or creates it with `POST /v1/workflows`).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html } from '../html.js';
import { Graph } from '../graph.js';
import { YamlEditor } from '../editor.js';

const NEW = `id: my_workflow
name: My workflow
triggers:
  - type: manual
actions:
  - id: hello
    type: log
    config:
      message: hello
`;

/** The YAML lines of a new action of `kind` (its required fields to fill in); `op` is the
 * operation of a service kind. */
export function actionSnippet(kind, id, op) {
  const lines = [`  - id: ${id}`, `    type: ${kind.name}`];
  const spec = kind.ops.find((o) => o.name === op);
  const required = spec ? spec.needs : kind.fields.filter((f) => f.required).map((f) => f.name);
  if (spec || required.length) {
    lines.push('    config:');
    if (spec) lines.push(`      op: ${spec.name}`);
    for (const f of required) lines.push(`      ${f}: ""`);
  }
  return lines.join('\n') + '\n';
}

function AddAction({ kinds, onAdd }) {
  const [name, setName] = useState('log');
  const [op, setOp] = useState('');
  const kind = kinds.find((k) => k.name === name);
  const spec = kind && kind.ops.find((o) => o.name === op);
  return html`
    <fieldset class="card">
      <legend>Add an action</legend>
      <label class="field">Kind
        <select value=${name} onChange=${(e) => { setName(e.target.value); setOp(''); }} aria-describedby="kind-doc">
          ${kinds.map((k) => html`<option value=${k.name}>${k.name}</option>`)}
        </select>
      </label>
      ${kind && html`
        <p id="kind-doc" class="muted">${kind.doc}</p>
        ${kind.ops.length > 0 && html`
          <label class="field">Operation
            <select value=${op} onChange=${(e) => setOp(e.target.value)}>
              <option value="">Choose one</option>
              ${kind.ops.map((o) => html`<option value=${o.name}>${o.name}</option>`)}
            </select>
          </label>`}
        ${kind.ops.length > 0
          ? spec && html`<p class="small">Fields: ${spec.needs.map((f) => html`<code>${f} (required)</code> `)}${spec.may.map((f) => html`<code>${f}</code> `)}</p>`
          : html`<p class="small">Fields: ${kind.fields.length === 0 ? 'free-form' : kind.fields.map((f) => html`<code class=${f.required ? 'req' : ''}>${f.name}${f.required ? ' (required)' : ''}</code> `)}</p>`}
        <button type="button" disabled=${kind.ops.length > 0 && !spec} onClick=${() => onAdd(kind, op)}>Add ${kind.name}</button>`}
    </fieldset>`;
}

export function Builder({ id }) {
  const [initial, setInitial] = useState(id ? null : NEW);
  const [kinds, setKinds] = useState([]);
  const [result, setResult] = useState(null);
  const [graph, setGraph] = useState(null);
  const [message, setMessage] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const text = useRef(initial || '');
  const view = useRef(null);
  useEffect(() => {
    api('/action-kinds').then((d) => setKinds(d.kinds)).catch(() => {});
    if (id) {
      api(`/workflows/${encodeURIComponent(id)}`)
        .then((w) => {
          text.current = w.yaml || '';
          setInitial(w.yaml || '');
          setGraph(w.graph);
        })
        .catch((e) => setLoadError(e.message));
    }
  }, [id]);
  const onResult = (answer) => {
    setResult(answer);
    if (answer.ok && answer.graph) setGraph(answer.graph);
  };
  const add = (kind, op) => {
    const v = view.current;
    if (!v) return;
    const doc = v.state.doc.toString();
    let n = 1;
    while (doc.includes(`id: ${kind.name.replace(/\./g, '_')}_${n}`)) n += 1;
    const snippet = actionSnippet(kind, `${kind.name.replace(/\./g, '_')}_${n}`, op);
    const insert = doc.endsWith('\n') ? snippet : `\n${snippet}`;
    v.dispatch({ changes: { from: doc.length, insert } });
    v.focus();
  };
  const save = async () => {
    setMessage(null);
    const body = text.current;
    try {
      const check = await api('/workflows/validate', { method: 'POST', body });
      if (!check.ok) {
        setMessage({ error: true, text: 'Not saved: fix the errors first.' });
        return;
      }
      const target = check.id;
      const exists = await api(`/workflows/${encodeURIComponent(target)}`).then(() => true, () => false);
      if (exists) await api(`/workflows/${encodeURIComponent(target)}`, { method: 'PUT', body });
      else await api('/workflows', { method: 'POST', body });
      setMessage({ error: false, text: `Saved ${target}.` });
      // The address names the saved workflow; the page stays (no remount, the message stays).
      if (target !== id) history.replaceState(null, '', `#/builder/${encodeURIComponent(target)}`);
    } catch (e) {
      setMessage({ error: true, text: e.message });
    }
  };
  if (loadError) return html`<p role="alert" class="error">${loadError}</p>`;
  if (initial === null) return html`<p aria-busy="true">Loading…</p>`;
  const errors = (result && result.errors) || [];
  return html`
    <h1>Builder${id ? html`: <code>${id}</code>` : ''}</h1>
    <div class="two">
      <section aria-label="YAML">
        <${YamlEditor} initial=${initial} viewRef=${view}
          onChange=${(t) => { text.current = t; }} onResult=${onResult} />
        <div aria-live="polite" data-testid="validation" class=${result && result.ok ? 'ok' : 'bad'}>
          ${!result ? html`<p class="muted">Validating…</p>`
            : result.ok ? html`<p class="ok-text">Valid: <code>${result.id}</code></p>`
            : html`<ul class="errors" aria-label="Validation errors">${errors.map((e) => html`
                <li data-line=${e.line || ''} data-column=${e.column || ''}>${e.line ? `line ${e.line}, column ${e.column}: ` : ''}${e.field ? html`<code>${e.field}</code> ` : ''}${e.message}</li>`)}</ul>`}
          ${result && (result.warnings || []).length > 0 && html`<ul class="warnings">${result.warnings.map((w) => html`<li>${typeof w === 'string' ? w : JSON.stringify(w)}</li>`)}</ul>`}
        </div>
        <p><button type="button" onClick=${save} class="primary">Save</button>
          ${message && html` <span role="status" class=${message.error ? 'error' : 'ok-text'}>${message.text}</span>`}</p>
      </section>
      <section aria-label="Live graph">
        <${Graph} graph=${graph} label="Live graph" />
        ${kinds.length > 0 && html`<${AddAction} kinds=${kinds} onAdd=${add} />`}
      </section>
    </div>`;
}
