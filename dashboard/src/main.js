// The dashboard's shell: a hash router (#/workflows, #/runs/ID, ...), the navigation, the
// light/dark switch, and the "log in first" notice when the session is missing.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { Workflows, WorkflowPage } from './pages/workflows.js';
import { Builder } from './pages/builder.js';
import { Runs, RunPage } from './pages/runs.js';
import { Voice } from './pages/voice.js';
import { Integrations } from './pages/integrations.js';
import { Schedules } from './pages/schedules.js';
import './style.css';

const NAV = [
  ['workflows', 'Workflows'],
  ['builder', 'Builder'],
  ['runs', 'Runs'],
  ['voice', 'Voice'],
  ['integrations', 'Integrations'],
  ['schedules', 'Schedules'],
];

function route() {
  const parts = (location.hash.replace(/^#\/?/, '') || 'workflows').split('/').map(decodeURIComponent);
  return { page: parts[0], arg: parts[1], rest: parts.slice(2) };
}

function page({ page, arg, rest }) {
  switch (page) {
    case 'workflows':
      return arg ? html`<${WorkflowPage} id=${arg} />` : html`<${Workflows} />`;
    case 'builder':
      return html`<${Builder} id=${arg} key=${arg || 'new'} />`;
    case 'runs':
      return arg ? html`<${RunPage} id=${arg} focus=${rest[0]} key=${arg} />` : html`<${Runs} />`;
    case 'voice':
      return html`<${Voice} />`;
    case 'integrations':
      return html`<${Integrations} />`;
    case 'schedules':
      return html`<${Schedules} />`;
    default:
      return html`<p>No page <code>${page}</code>.</p>`;
  }
}

function Theme() {
  const [theme, setTheme] = useState(localStorage.getItem('atlas-theme') || 'auto');
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('atlas-theme', theme);
  }, [theme]);
  return html`
    <label class="theme">Theme
      <select value=${theme} onChange=${(e) => setTheme(e.target.value)}>
        <option value="auto">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>`;
}

function App() {
  const [where, setWhere] = useState(route());
  const [auth, setAuth] = useState('checking');
  useEffect(() => {
    const f = () => setWhere(route());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  useEffect(() => {
    api('/status')
      .then(() => setAuth('ok'))
      .catch((e) => setAuth(e.status === 401 ? 'login' : `error: ${e.message}`));
  }, []);
  useEffect(() => {
    const main = document.getElementById('main');
    if (main) main.focus({ preventScroll: true });
  }, [where.page]);
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand" aria-hidden="true">◉</span><strong>Atlas</strong>
      <nav aria-label="Main">
        <ul>
          ${NAV.map(([p, label]) => html`
            <li><a href=${`#/${p}`} aria-current=${where.page === p ? 'page' : undefined}>${label}</a></li>`)}
        </ul>
      </nav>
      <${Theme} />
    </header>
    <main id="main" tabindex="-1">
      ${auth === 'ok' ? page(where)
        : auth === 'checking' ? html`<p aria-busy="true">Connecting to Atlas…</p>`
        : auth === 'login' ? html`
          <section class="card" role="alert">
            <h1>Log in to the dashboard</h1>
            <p>Open the dashboard with a one-time link: run <code>atlas dashboard --open</code>, or choose
            <em>Open dashboard</em> in the tray menu.</p>
          </section>`
        : html`<p role="alert">Atlas does not answer: ${auth}</p>`}
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
