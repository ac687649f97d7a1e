import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type SessionInfo, setSession } from './api.js';
import { AlertsPage } from './pages/alerts.js';
import { ApprovalsPage } from './pages/approvals.js';
import { AuditPage } from './pages/audit.js';
import { ConnectionsPage } from './pages/connections.js';
import { KillSwitchPage } from './pages/kill-switch.js';
import { MetricsPage } from './pages/metrics.js';
import { PolicyPage } from './pages/policy.js';
import { RestrictedPage } from './pages/restricted.js';
import { ToolsPage } from './pages/tools.js';

const PAGES = [
  { id: 'tools', title: 'Tools', view: ToolsPage },
  { id: 'approvals', title: 'Approvals', view: ApprovalsPage },
  { id: 'connections', title: 'Connections', view: ConnectionsPage },
  { id: 'restricted', title: 'Restricted', view: RestrictedPage },
  { id: 'kill-switch', title: 'Kill switch', view: KillSwitchPage },
  { id: 'audit', title: 'Audit', view: AuditPage },
  { id: 'metrics', title: 'Metrics', view: MetricsPage },
  { id: 'alerts', title: 'Alerts', view: AlertsPage },
  { id: 'policy', title: 'Policy', view: PolicyPage },
] as const;

function pageFromHash(): (typeof PAGES)[number] {
  // `#/approvals/<id>`: the first segment is the page, the rest is the page's own.
  const id = location.hash.replace(/^#\/?/, '').split('/')[0];
  return PAGES.find((p) => p.id === id) ?? PAGES[0];
}

function App() {
  // undefined: still asking; null: logged out.
  const [session, setSessionState] = useState<SessionInfo | null | undefined>(undefined);
  const [page, setPage] = useState(pageFromHash);

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    addEventListener('hashchange', onHash);
    fetch('/ui/session', { credentials: 'same-origin' })
      .then(async (r) => (r.ok ? ((await r.json()) as SessionInfo) : null))
      .then(adopt, () => setSessionState(null));
    return () => removeEventListener('hashchange', onHash);
  }, []);

  function adopt(s: SessionInfo | null) {
    if (s) setSession(s.csrf, () => setSessionState(null));
    setSessionState(s);
  }

  useEffect(() => {
    document.title = session ? `${page.title} · mcp-warden` : 'Log in · mcp-warden';
  }, [page, session]);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) return <Login onLogin={adopt} />;

  const View = page.view;
  return (
    <>
      <header class="top">
        <span class="brand">mcp-warden</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.id}>
                <a href={`#/${p.id}`} aria-current={p.id === page.id ? 'page' : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          Signed in as <strong>{session.actor}</strong>
        </span>
        <button
          type="button"
          class="quiet"
          onClick={() => api('/ui/logout', {}).finally(() => setSessionState(null))}
        >
          Log out
        </button>
      </header>
      <main id="main">
        <h1>{page.title}</h1>
        <View />
      </main>
    </>
  );
}

function Login({ onLogin }: { onLogin: (s: SessionInfo) => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError('');
    try {
      const res = await fetch('/ui/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: form.get('token'), name: form.get('name') || undefined }),
      });
      const data = (await res.json().catch(() => ({}))) as SessionInfo & { message?: string };
      if (!res.ok) throw new ApiError(res.status, 'LOGIN', data.message ?? `HTTP ${res.status}`);
      // The cookie is HttpOnly: check the browser kept it (it refuses a Secure cookie over plain HTTP
      // on a host other than localhost).
      const check = await fetch('/ui/session', { credentials: 'same-origin' });
      if (!check.ok)
        throw new ApiError(
          401,
          'COOKIE',
          'The browser did not keep the session cookie: serve the admin port over HTTPS.',
        );
      onLogin(data);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <h1>mcp-warden</h1>
      <p>
        Log in with your operator token (<code>admin.operators</code>) or the shared admin token (
        <code>admin.token</code>).
      </p>
      <form onSubmit={submit}>
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required />
        <label for="name">Your name, for the audit (optional; an operator token names you already)</label>
        <input id="name" name="name" type="text" pattern="[\w.@\-]{1,64}" autocomplete="username" />
        <button type="submit" disabled={busy}>
          Log in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
