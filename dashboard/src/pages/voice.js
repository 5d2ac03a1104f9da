// Voice: the agent's stage live, the last utterances (typed, sent or heard) with their
// transcript, the match candidates and scores (what `atlas listen --explain` shows), and a text
// box whose commands go to `POST /v1/utterance` as typed commands.
import { useEffect, useState } from 'preact/hooks';
import { api, subscribe, when } from '../api.js';
import { html } from '../html.js';

function Utterance({ u }) {
  return html`
    <li class="card utterance" data-testid="utterance">
      <p><strong>“${u.transcript}”</strong> <span class="muted small">${u.source} · ${when(u.at)}</span></p>
      <p>${u.workflow ? html`Matched <a href=${`#/workflows/${encodeURIComponent(u.workflow)}`}>${u.workflow}</a> (score ${u.score != null ? u.score.toFixed(2) : '–'})`
        : html`Nothing ran${u.reason ? `: ${u.reason}` : ''}`}
        ${u.run && html` · <a href=${`#/runs/${encodeURIComponent(u.run.run_id || u.run.id)}`}>its run</a>`}</p>
      ${u.reply && html`<p>Replied: ${u.reply}</p>`}
      ${u.candidates && u.candidates.length > 0 && html`
        <table class="list small" aria-label="Match candidates">
          <thead><tr><th scope="col">Workflow</th><th scope="col">Phrase</th><th scope="col">Score</th><th scope="col">Why</th></tr></thead>
          <tbody>${u.candidates.map((c) => html`<tr><td>${c.workflow_id}</td><td>${c.phrase}</td><td>${c.score.toFixed(2)}</td><td>${c.why}</td></tr>`)}</tbody>
        </table>`}
    </li>`;
}

export function Voice() {
  const [stage, setStage] = useState('…');
  const [voiceOn, setVoiceOn] = useState(true);
  const [list, setList] = useState([]);
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api('/status').then((s) => {
      setStage(s.state || 'idle');
      setVoiceOn(!!s.voice);
    }).catch(() => {});
    api('/utterances').then((d) => setList(d.utterances)).catch(() => {});
    return subscribe((ev) => {
      if (ev.type === 'agent_stage') setStage(ev.stage);
      if (ev.type === 'utterance') setList((l) => [ev.utterance, ...l].slice(0, 20));
    });
  }, []);
  const send = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await api('/utterance', { method: 'POST', body: { text } });
      setText('');
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <h1>Voice</h1>
    <p>Agent stage: <strong data-testid="stage" aria-live="polite">${stage}</strong></p>
    ${!voiceOn && html`<p class="muted">Voice is off (no whisper model): typed commands need the voice loop's matcher.</p>`}
    <form onSubmit=${send} class="card" aria-label="Typed command">
      <label class="field" for="command">Say it by typing</label>
      <div class="row"><input id="command" value=${text} onInput=${(e) => setText(e.target.value)} placeholder="what's the weather" autocomplete="off" />
      <button type="submit" disabled=${busy}>Send</button></div>
      ${error && html`<p role="alert" class="error">${error}</p>`}
    </form>
    <h2>Last utterances</h2>
    ${list.length === 0 ? html`<p class="muted">None yet.</p>` : html`<ol class="plain">${list.map((u) => html`<${Utterance} u=${u} />`)}</ol>`}`;
}
