// Integrations: each one's state; connect starts the sign-in (the provider's page opens in a
// new tab, the daemon finishes it when the browser comes back); disconnect revokes and forgets.
import { useEffect, useState } from 'preact/hooks';
import { api, subscribe, when } from '../api.js';
import { html } from '../html.js';

export function Integrations() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [links, setLinks] = useState({});
  const load = () => api('/integrations').then((d) => setList(d.integrations)).catch((e) => setError(e.message));
  useEffect(() => {
    load();
    return subscribe((ev) => ev.type && ev.type.startsWith('integration') && load());
  }, []);
  const connect = async (i) => {
    setError(null);
    try {
      const r = await api(`/integrations/${encodeURIComponent(i.name)}/connect`, { method: 'POST' });
      setLinks({ ...links, [i.name]: r.url });
      window.open(r.url, '_blank', 'noopener');
      // The daemon finishes the sign-in when the browser comes back: follow it (bounded).
      const before = i.state;
      for (let n = 0; n < 180; n += 1) {
        await new Promise((done) => setTimeout(done, 1000));
        const d = await api('/integrations');
        setList(d.integrations);
        const now = d.integrations.find((x) => x.name === i.name);
        if (!now || now.state !== before || now.reason !== i.reason) break;
      }
    } catch (e) {
      setError(e.message);
    }
  };
  const disconnect = async (i) => {
    setError(null);
    try {
      await api(`/integrations/${encodeURIComponent(i.name)}/disconnect`, { method: 'POST' });
      load();
    } catch (e) {
      setError(e.message);
    }
  };
  return html`
    <h1>Integrations</h1>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${!list ? html`<p aria-busy="true">Loading…</p>` : html`
      <table class="list" aria-label="Integrations">
        <thead><tr><th scope="col">Integration</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Actions</th></tr></thead>
        <tbody>${list.map((i) => html`
          <tr data-integration=${i.name}>
            <td>${i.title} <span class="muted small">${i.name} · ${i.auth}</span></td>
            <td><span class=${`badge ${i.state}`}>${i.state}</span>${i.reason && html`<div class="small">${i.reason}</div>`}
              ${!i.configured && html`<div class="small muted">Not configured in config.toml.</div>`}</td>
            <td class="small">${i.connected_at ? when(Date.parse(i.connected_at)) : ''}</td>
            <td>
              <button type="button" onClick=${() => connect(i)} aria-label=${`Connect ${i.title}`}>Connect</button>
              <button type="button" onClick=${() => disconnect(i)} aria-label=${`Disconnect ${i.title}`}>Disconnect</button>
              ${links[i.name] && html`<div class="small">Sign in: <a href=${links[i.name]} target="_blank" rel="noopener noreferrer">open the provider's page</a></div>`}
            </td>
          </tr>`)}</tbody>
      </table>`}`;
}
